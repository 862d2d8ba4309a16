import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

USD = 10**6
MAX_MINT = 1_000_000_000 * USD

PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@pytest.fixture
def usd(chain):
    return chain.deploy("DevUSD", chain.accounts[0])


@pytest.fixture
def holder():
    """A key held only off-chain: it never sends a transaction, it only signs permits."""
    return Account.from_key(keccak(text="audifi dev usd permit holder"))


def _permit(chain, usd, signer, spender, value, nonce, deadline):
    domain = {
        "name": "AudiFi Dev USD",
        "version": "1",
        "chainId": chain.w3.eth.chain_id,
        "verifyingContract": usd.address,
    }
    message = {
        "owner": signer.address,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    return Account.sign_typed_data(signer.key, domain, PERMIT_TYPES, message), domain, message


def test_metadata_is_a_usdc_like_dev_token(chain, usd):
    assert usd.functions.name().call() == "AudiFi Dev USD"
    assert usd.functions.symbol().call() == "dUSD"
    assert usd.functions.decimals().call() == 6
    assert usd.functions.owner().call() == chain.accounts[0]
    assert usd.functions.totalSupply().call() == 0
    assert usd.functions.MAX_MINT().call() == MAX_MINT


def test_the_owner_mints_test_money(chain, usd):
    alice, bob = chain.accounts[1], chain.accounts[2]
    chain.send(usd.functions.mint(alice, 250 * USD))
    receipt = chain.send(usd.functions.mint(bob, MAX_MINT))
    (event,) = chain.events(usd, "Transfer", receipt)
    assert event.args["from"] == "0x0000000000000000000000000000000000000000"
    assert (event.args.to, event.args.value) == (bob, MAX_MINT)
    assert usd.functions.balanceOf(alice).call() == 250 * USD
    assert usd.functions.balanceOf(bob).call() == MAX_MINT
    assert usd.functions.totalSupply().call() == 250 * USD + MAX_MINT


def test_only_the_owner_mints(chain, usd):
    stranger = chain.accounts[1]
    with chain.reverts(usd, "OwnableUnauthorizedAccount", stranger):
        usd.functions.mint(stranger, 1).transact({"from": stranger})
    assert usd.functions.totalSupply().call() == 0


def test_a_mint_is_capped_per_call(chain, usd):
    alice = chain.accounts[1]
    with chain.reverts(usd, "MintTooLarge", MAX_MINT + 1, MAX_MINT):
        usd.functions.mint(alice, MAX_MINT + 1).transact()
    assert usd.functions.totalSupply().call() == 0


def test_holders_transfer(chain, usd):
    alice, bob = chain.accounts[1], chain.accounts[2]
    chain.send(usd.functions.mint(alice, 100 * USD))
    chain.send(usd.functions.transfer(bob, 40 * USD), sender=alice)
    assert usd.functions.balanceOf(alice).call() == 60 * USD
    assert usd.functions.balanceOf(bob).call() == 40 * USD
    with chain.reverts(usd, "ERC20InsufficientBalance", alice, 60 * USD, 60 * USD + 1):
        usd.functions.transfer(bob, 60 * USD + 1).transact({"from": alice})


def test_a_permit_signed_off_chain_lets_a_spender_transfer_once(chain, usd, holder):
    spender, shop = chain.accounts[1], chain.accounts[2]
    chain.send(usd.functions.mint(holder.address, 100 * USD))
    deadline = chain.now() + 3600
    signed, domain, message = _permit(chain, usd, holder, spender, 30 * USD, 0, deadline)
    assert usd.functions.eip712Domain().call()[1:5] == [
        domain["name"],
        domain["version"],
        domain["chainId"],
        usd.address,
    ]
    assert usd.functions.nonces(holder.address).call() == 0

    permit = usd.functions.permit(
        holder.address,
        spender,
        30 * USD,
        deadline,
        signed.v,
        signed.r.to_bytes(32, "big"),
        signed.s.to_bytes(32, "big"),
    )
    chain.send(permit, sender=spender)
    assert usd.functions.allowance(holder.address, spender).call() == 30 * USD
    assert usd.functions.nonces(holder.address).call() == 1
    chain.send(usd.functions.transferFrom(holder.address, shop, 30 * USD), sender=spender)
    assert usd.functions.balanceOf(shop).call() == 30 * USD
    assert usd.functions.balanceOf(holder.address).call() == 70 * USD
    assert usd.functions.allowance(holder.address, spender).call() == 0

    # Replayed, the signature is checked against nonce 1, so it recovers some other address.
    replayed = encode_typed_data(domain, PERMIT_TYPES, {**message, "nonce": 1})
    wrong_signer = Account.recover_message(replayed, vrs=(signed.v, signed.r, signed.s))
    assert wrong_signer != holder.address
    with chain.reverts(usd, "ERC2612InvalidSigner", wrong_signer, holder.address):
        permit.transact({"from": spender})
    assert usd.functions.allowance(holder.address, spender).call() == 0
    with chain.reverts(usd, "ERC20InsufficientAllowance", spender, 0, USD):
        usd.functions.transferFrom(holder.address, shop, USD).transact({"from": spender})


def test_an_expired_permit_is_refused(chain, usd, holder):
    spender = chain.accounts[1]
    deadline = chain.now() - 1
    signed, _, _ = _permit(chain, usd, holder, spender, USD, 0, deadline)
    with chain.reverts(usd, "ERC2612ExpiredSignature", deadline):
        usd.functions.permit(
            holder.address,
            spender,
            USD,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
        ).transact({"from": spender})
