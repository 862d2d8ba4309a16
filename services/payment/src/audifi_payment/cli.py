"""`audifi ledger verify`: prove the ledger from the payment service's log.

Every transaction balanced in one currency, no flagged account (a user's balance) below zero
at any point of the log, reversals of posted transactions only and once, and every guard equal
to the balance the log folds to. Exit 0 when it holds, 1 (with each problem) when not.
"""

from __future__ import annotations

import asyncio

import typer
from audifi_kit.eventstore import open_event_store
from audifi_kit.settings import Settings
from rich.console import Console
from rich.table import Table

from audifi_payment.application import PaymentApplication
from audifi_payment.ledger_verify import VerifyReport, verify_application

ledger_app = typer.Typer(help="The payment ledger: verify it from the event log.")
console = Console()


async def _verify() -> VerifyReport:
    store = await open_event_store("payment", PaymentApplication, Settings.from_env())
    try:
        return await asyncio.to_thread(verify_application, store.app)
    finally:
        await asyncio.to_thread(store.close)


@ledger_app.command("verify")
def verify(
    balances: bool = typer.Option(False, "--balances", help="Print every account's balance"),
) -> None:
    """Check every transaction of the ledger and every balance at every point of the log."""
    report = asyncio.run(_verify())
    if balances:
        table = Table(
            "account", "currency", "debits", "credits", "pending debits", "pending credits"
        )
        for (account, currency), b in sorted(report.balances.items()):
            table.add_row(
                account,
                currency,
                str(b.debits_posted),
                str(b.credits_posted),
                str(b.debits_pending),
                str(b.credits_pending),
            )
        console.print(table)
    if report.ok:
        console.print(
            f"ledger verified: {report.transactions} transactions balanced, "
            f"{len(report.balances)} account balances, no flagged account ever below zero"
        )
        return
    for problem in report.problems:
        console.print(f"[red]problem:[/red] {problem}")
    console.print(f"[red]ledger NOT verified:[/red] {len(report.problems)} problem(s)")
    raise typer.Exit(1)
