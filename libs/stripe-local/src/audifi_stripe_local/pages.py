"""The pages a person opens: the same look for paying, the customer portal and onboarding.

Plain HTML forms that work without JavaScript, so a test can drive them with one POST and a
person can read them in any browser.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1f36; }
h1 { font-size: 1.4rem; } .muted { color: #697386; font-size: .9rem; }
.box { border: 1px solid #e3e8ee; border-radius: 8px; padding: 1rem; margin: 1rem 0; }
.error { background: #fdecea; border-color: #f5c2c0; color: #a3201b; }
.ok { background: #e8f5e9; border-color: #b7dfb9; color: #1b5e20; }
label { display: block; margin: .6rem 0 .2rem; font-size: .9rem; }
input { width: 100%; padding: .5rem; box-sizing: border-box; font-size: 1rem; }
button { margin-top: 1rem; padding: .6rem 1.2rem; font-size: 1rem; border: 0; border-radius: 6px;
         background: #635bff; color: white; cursor: pointer; }
button.secondary { background: #e3e8ee; color: #1a1f36; }
table { width: 100%; border-collapse: collapse; } td { padding: .3rem 0; }
td.amount { text-align: right; }
"""

TEST_CARDS = """
<p class="muted">Test mode. 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined;
4000 0000 0000 0341 can be saved as a customer's card, but every charge on it is declined.
Any future expiry, any 3 digits.</p>
"""


def money(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=html, status=status, content_type="text/html")


def notice(text: str, kind: str = "error") -> str:
    return f"<div class='box {kind}' role='alert'>{escape(text)}</div>"


def card_fields(email: bool = False) -> str:
    """Inputs named as the POST handlers read them: card_number, exp (MM / YY), cvc."""
    email_field = (
        "<label for='email'>Email</label><input id='email' name='email' type='email'>"
        if email
        else ""
    )
    return (
        f"{email_field}"
        "<label for='card_number'>Card number</label>"
        "<input id='card_number' name='card_number' inputmode='numeric' autocomplete='cc-number'"
        " placeholder='4242 4242 4242 4242' required>"
        "<label for='exp'>Expiry (MM / YY)</label>"
        "<input id='exp' name='exp' placeholder='12 / 34' value='12 / 34'>"
        "<label for='cvc'>CVC</label><input id='cvc' name='cvc' placeholder='123' value='123'>"
    )
