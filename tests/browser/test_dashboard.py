"""The dashboard in headless Chromium against a real chain: every figure on the page is checked against what the
contracts say through their own views (and historical state for values over epochs), not against the page's
own arithmetic; a transaction sent while the page is open must appear without a reload. Client fees and prices
(Payments) and challenges (ServingChallenges) are checked the same way: against the contracts' views and logs."""

from __future__ import annotations

import math

import pytest
from eth_utils import event_abi_to_log_topic
from web3 import Web3

from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Outcome, Phase, Protocol, ServerRecord, Status
from efedllm.layers import compact_layers
from tests.browser.pages import PHONE, dashboard_process, open_page, screenshot
from tests.browser.scenario import CLIENT, EQUIVOCATOR, PRICES, RECEIPT_TOKENS, SERVERS, VERIFIERS

NOT_SHOWN = {  # repeats of what the feed shows (frontend/src/history.js), and role changes
    "RewardWeightRecorded",
    "FactsScheduled",
    "MaxSpanScheduled",
    "RoleGranted",
    "RoleRevoked",
    "RoleAdminChanged",
}
NO_SCORE = {Outcome.NONE, Outcome.NO_QUORUM}


@pytest.fixture(scope="module")
def dash(anvil, history):
    with dashboard_process(anvil.url, history[1]) as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, dash):
    page = open_page(browser, dash)
    yield page
    assert page.js_errors == [], page.js_errors
    page.context.close()


@pytest.fixture(scope="module")
def chain(history) -> Protocol:
    return history[0].gov


def eth_text(wei: int) -> str:
    """The page's ETH format: up to 4 decimals, thousands separated."""
    return f"{round(wei / ETHER, 4):,.4f}".rstrip("0").rstrip(".") + " ETH"


def wei_text(wei: int) -> str:
    """The page's format of small amounts (format.js wei): wei, then gwei up to 0.0001 ETH, then ETH."""
    if wei < 10**6:
        return f"{wei:,} wei"
    if wei < 10**14:  # four significant digits, but never fewer than the whole gwei
        gwei = wei / 10**9
        digits = max(0, 3 - math.floor(math.log10(gwei)))
        text = f"{round(gwei, digits):,.{digits}f}"
        return (text.rstrip("0").rstrip(".") if digits else text) + " gwei"
    return eth_text(wei)


def price_text(p: Protocol, address: str) -> str:
    """A server's price as the page shows it: "—" when it never announced one, "free" at 0."""
    announced = p.payments.events.PriceAnnounced().get_logs(
        from_block=p.deployment.block, argument_filters={"server": address}
    )
    price = p.payments.functions.priceOf(address).call()
    return "—" if not announced else "free" if price == 0 else wei_text(price)


def fees_withdrawn(p: Protocol, address: str) -> int:
    logs = p.payments.events.FeesWithdrawn().get_logs(
        from_block=p.deployment.block, argument_filters={"server": address}
    )
    return sum(log.args.amount for log in logs)


def fees_redeemed(p: Protocol, address: str, client: str) -> int:
    """What the client's receipts paid the server, by the contract's view of each epoch's redeemed receipt."""
    return sum(p.payments.functions.redeemed(e, client, address).call() for e in range(p.current_epoch() + 1))


def claimed_of(p: Protocol, address: str, epochs) -> int:
    pool = p.pool.functions
    return sum(pool.shareOf(e, address).call() for e in epochs if pool.hasClaimed(e, address).call())


def last_block_of_epochs(p: Protocol) -> dict[int, int]:
    """epoch -> the last block whose timestamp lies before the epoch's end (the state at the epoch's end)."""
    w3 = p.w3
    latest = w3.eth.block_number
    stamps = [w3.eth.get_block(b)["timestamp"] for b in range(latest + 1)]
    out = {}
    for epoch in range(p.current_epoch() + 1):
        end = p.window_start(epoch + 1, Phase.WORK)
        out[epoch] = max(b for b in range(latest + 1) if stamps[b] < end)
    return out


def row_values(page, address: str) -> dict[str, str]:
    return page.eval_on_selector(
        f'#servers tr[data-address="{address.lower()}"]',
        "tr => Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.col, "
        "{value: td.dataset.value ?? '', text: td.innerText.trim(), flags: td.dataset.flags ?? '', "
        "withdrawn: td.dataset.withdrawn ?? '', serving: td.dataset.serving ?? ''}]))",
    )


def test_server_table_shows_what_the_registry_holds(page, chain, history):
    epochs = range(chain.current_epoch() + 1)
    client = history[0].accounts[CLIENT]
    servers = chain.servers()
    assert page.locator("#servers tbody tr").count() == len(servers) == 5
    theta = chain.scoring.functions.theta().call()
    for s in servers:
        cells = row_values(page, s.address)
        assert cells["layers"]["value"] == f"{s.first_layer}:{s.first_layer + s.num_layers}"
        assert cells["layers"]["serving"] == s.serving.label and s.serving.label in cells["layers"]["text"]
        assert cells["status"]["value"] == s.status.name.lower()
        assert ("slashed" in cells["status"]["flags"]) == (s.times_slashed > 0)
        assert ("unbonding" in cells["status"]["flags"]) == (s.unbonding > 0)
        assert int(cells["stake"]["value"]) == s.stake and cells["stake"]["text"] == eth_text(s.stake)
        assert int(cells["unbonding"]["value"]) == s.unbonding
        assert int(cells["slashes"]["value"]) == s.times_slashed
        last_epoch, score = chain.last_score(s.address)
        acc, s_i, outcome = score.acc, score.score, score.outcome
        if outcome in NO_SCORE:
            assert cells["score"]["value"] == "" and cells["score"]["text"] == "—"
        else:
            assert (int(cells["acc"]["value"]), int(cells["score"]["value"])) == (acc, s_i)
            assert (
                int(page.get_attribute(f'tr[data-address="{s.address.lower()}"] td[data-col="score"]', "data-epoch"))
                == last_epoch
            )
            assert cells["score"]["text"].startswith(f"{s_i / 1e18:.4f}")
            css = page.get_attribute(f'tr[data-address="{s.address.lower()}"] .score', "class")
            assert ("pass" in css) == (s_i >= theta)
        work = sum(chain.commitment_of(e, s.address).work_units for e in epochs)
        assert int(cells["work"]["value"]) == work
        pending = chain.pool.functions.pendingRewards(s.address, list(epochs)).call()
        assert int(cells["pending"]["value"]) == pending
        assert int(cells["claimed"]["value"]) == claimed_of(chain, s.address, epochs)
        # client fees beside the pool rewards: everything redeemed, and what the server took out of Payments
        redeemed, withdrawn = fees_redeemed(chain, s.address, client), fees_withdrawn(chain, s.address)
        assert int(cells["fees"]["value"]) == redeemed == chain.payments.functions.feesOf(s.address).call() + withdrawn
        fees_shown, *withdrawn_shown = cells["fees"]["text"].split("\n")
        assert fees_shown == (wei_text(redeemed) if redeemed else "—")
        assert int(cells["fees"]["withdrawn"]) == withdrawn
        assert withdrawn_shown == (
            [f"{'all' if withdrawn == redeemed else wei_text(withdrawn)} withdrawn"] if withdrawn else []
        )
        assert cells["price"]["text"] == price_text(chain, s.address)
        if cells["price"]["text"] != "—":
            assert int(cells["price"]["value"]) == chain.payments.functions.priceOf(s.address).call()
    # the scenario covers each case the table must tell apart
    by_status = {s.status for s in servers}
    assert Status.DEACTIVATED in by_status and any(s.unbonding for s in servers)
    assert any(chain.pool.functions.pendingRewards(s.address, list(epochs)).call() for s in servers)
    prices = {cells["price"]["text"] for cells in (row_values(page, s.address) for s in servers)}
    assert {"—", "free", "2 gwei", "1,500 wei"} == prices
    fees = [(fees_redeemed(chain, s.address, client), fees_withdrawn(chain, s.address)) for s in servers]
    assert any(r and w == r for r, w in fees) and any(r and not w for r, w in fees)  # withdrawn, and still held
    assert int(page.get_attribute('[data-kpi="fees"]', "data-value")) == sum(r for r, _ in fees)
    assert (
        int(page.get_attribute('[data-kpi="fees-held"]', "data-value")) == chain.payments.functions.totalFees().call()
    )


def test_table_sorts_by_column(page):
    page.click('#servers th[data-sort="stake"]')
    stakes = [
        int(v)
        for v in page.eval_on_selector_all('#servers td[data-col="stake"]', "tds => tds.map(t => t.dataset.value)")
    ]
    assert stakes == sorted(stakes, reverse=True) and len(set(stakes)) > 1
    page.click('#servers th[data-sort="stake"]')
    stakes = [
        int(v)
        for v in page.eval_on_selector_all('#servers td[data-col="stake"]', "tds => tds.map(t => t.dataset.value)")
    ]
    assert stakes == sorted(stakes)
    page.click('#servers th[data-sort="address"]')


def test_coverage_marks_uncovered_layers(page, chain):
    coverage = chain.coverage()
    cells = page.eval_on_selector_all(
        ".coverage .layer", "ls => ls.map(l => [+l.dataset.layer, +l.dataset.count, l.classList.contains('uncovered')])"
    )
    assert [(layer, count, count == 0) for layer, count in enumerate(coverage)] == [tuple(c) for c in cells]
    missing = chain.missing_layers()
    assert missing == list(range(24, 30))  # the slashed server's span
    assert page.inner_text("#coverage-note") == f"uncovered: {compact_layers(missing)}"
    assert int(page.inner_text('[data-kpi="covered"]')) == len(coverage) - len(missing)


def test_epoch_panel_and_parameters(page, chain):
    epoch = chain.current_epoch()
    assert page.get_attribute(".epoch-now", "data-epoch") == str(epoch)
    assert page.get_attribute(".epoch-now", "data-phase") == "Work" and chain.phase(epoch) == Phase.WORK
    settling = page.eval_on_selector_all(".settling li", "ls => ls.map(l => [+l.dataset.epoch, l.dataset.phase])")
    assert settling == [[epoch - 1, "Commit work"]] and chain.phase(epoch - 1) == Phase.COMMIT_WORK
    page.goto(page.url.split("#")[0] + "#/epochs")
    page.wait_for_selector("#param-table")
    params = chain.parameters()
    assert page.inner_text('[data-param="θ (trust threshold)"]') == "0.5" and params["theta"] == ETHER // 2
    assert page.inner_text('[data-param="Minimum verifiers"]') == str(params["minVerifiers"])
    assert page.inner_text('[data-param="Slashing rule"]') == "accuracy below θ" and params["slashingRule"] == 0
    assert page.inner_text('[data-param="Model layers"]') == str(params["numLayers"])
    assert (
        page.inner_text('[data-param="Verifier share"]') == "0.1 of each pool"
        and params["verifierShare"] == ETHER // 10
    )
    for e in range(epoch + 1):
        pool = chain.pool_of(e)
        row = f'table.epochs tr[data-epoch="{e}"]'
        got = page.eval_on_selector(
            row,
            "tr => Object.fromEntries([...tr.querySelectorAll('td[data-value]')].map(td => [td.dataset.col, td.dataset.value]))",
        )
        assert {k: int(v) for k, v in got.items()} == {
            "size": chain.pool.functions.poolSize(e).call(),
            "funded": pool.funded,
            "slashed": pool.slashed,
            "rolledIn": pool.rolled_in,
            "claimed": pool.claimed,
            "verifierPot": chain.pool.functions.verifierPot(e).call(),
        }
    assert chain.pool.functions.verifierPot(0).call() > 0  # so the pots above were worth checking
    bars = page.evaluate("efedDashboard.charts().pools.bars")
    for bar in bars:
        pool = chain.pool_of(bar["x"])
        assert [p["value"] for p in bar["parts"]] == pytest.approx(
            [pool.funded / 1e18, pool.slashed / 1e18, pool.rolled_in / 1e18]
        )
    page.goto(page.url.split("#")[0] + "#/")
    page.wait_for_selector("#servers tbody tr")


def test_charts_hold_the_chain_history(page, chain):
    charts = page.evaluate("efedDashboard.charts()")
    current = chain.current_epoch()
    servers = chain.servers()
    theta = chain.scoring.functions.theta().call()
    assert charts["scores"]["refLines"][0]["y"] == theta / 1e18
    series = {s["key"]: s["raw"] for s in charts["scores"]["series"]}
    assert set(series) == {s.address.lower() for s in servers}
    for s in servers:
        expected = []
        for e in range(current + 1):
            score = chain.score_of(e, s.address)
            if score.outcome not in NO_SCORE:
                expected.append(
                    {"epoch": e, "score": str(score.score), "acc": str(score.acc), "outcome": score.outcome}
                )
        assert series[s.address.lower()] == expected
    assert any(p["outcome"] == Outcome.SLASHED for points in series.values() for p in points), (
        "a slashing shows in the scores"
    )

    ends = last_block_of_epochs(chain)
    registry = chain.registry.functions
    record = chain._decoder(ServerRecord, "ServerRegistry", "getServer")  # by the ABI's names, never by position
    total = {
        e: sum(
            record(registry.getServer(s.address).call(block_identifier=ends[e]), address=s.address).stake
            for s in servers
        )
        for e in ends
    }
    stake = charts["stake"]["series"][0]["raw"]
    first = min(e for e, v in total.items() if v > 0)
    assert [(p["epoch"], int(p["stake"])) for p in stake] == [(e, total[e]) for e in range(first, current + 1)]
    assert len({int(p["stake"]) for p in stake}) > 1, "stake changed over the epochs"

    pool = chain.pool.functions
    earned = claimed = 0
    expected_earned, expected_claimed = [], []
    for e in range(current + 1):
        for s in servers:
            share = pool.shareOf(e, s.address).call()
            earned += share
            claimed += share if pool.hasClaimed(e, s.address).call() else 0
        expected_earned.append({"epoch": e, "value": str(earned)})
        expected_claimed.append({"epoch": e, "value": str(claimed)})
    rewards = {s["key"]: s["raw"] for s in charts["rewards"]["series"]}
    assert rewards["earned"] == expected_earned and rewards["claimed"] == expected_claimed
    assert 0 < claimed < earned


def chain_events(p: Protocol) -> list[tuple[str, int, str, int]]:
    """(event, block, tx, log index) of every event of the deployment that the feed shows, oldest first."""
    topics = {}
    for record in p.deployment.contracts.values():
        for item in record.abi:
            if item["type"] == "event" and item["name"] not in NOT_SHOWN:
                topics["0x" + event_abi_to_log_topic(item).hex()] = item["name"]
    logs = p.w3.eth.get_logs(
        {
            "fromBlock": p.deployment.block,
            "toBlock": "latest",
            "address": [r.address for r in p.deployment.contracts.values()],
        }
    )
    return [
        (
            topics[Web3.to_hex(log["topics"][0])],
            log["blockNumber"],
            Web3.to_hex(log["transactionHash"]),
            log["logIndex"],
        )
        for log in logs
        if Web3.to_hex(log["topics"][0]) in topics
    ]


def feed_rows(page) -> list[tuple[str, int, str, int]]:
    return [
        tuple(r)
        for r in page.eval_on_selector_all(
            ".feed .ev", "evs => evs.map(e => [e.dataset.event, +e.dataset.block, e.dataset.tx, +e.dataset.logIndex])"
        )
    ]


def claim_tx(p: Protocol, account: str) -> str:
    (log, *_) = p.pool.events.RewardsClaimed().get_logs(
        from_block=p.deployment.block, argument_filters={"server": account}
    )
    return Web3.to_hex(log["transactionHash"])


def test_event_feed_lists_every_event_with_block_and_tx(page, chain, history):
    played = history[0]
    page.goto(page.url.split("#")[0] + "#/events")
    page.wait_for_selector("#event-feed .ev")
    expected = chain_events(chain)[::-1]
    assert 100 < len(expected) <= 200  # a page of the newest 100, then the rest behind "Show older events"
    assert feed_rows(page) == expected[:100]
    page.click("#more-events")
    assert feed_rows(page) == expected
    kinds = {e[0] for e in expected}
    assert {
        "ServerRegistered",
        "ServingDeclared",
        "WorkCommitted",
        "ScoresCommitted",
        "ScoresRevealed",
        "ServerScored",
        "StatusChanged",
        "Slashed",
        "EpochFunded",
        "RewardsClaimed",
        "UnstakeRequested",
        "StakeAdded",
        "SeedShareCommitted",
        "SeedShareRevealed",
        "SeedDrawn",
        "VerifierAdded",
        "PriceAnnounced",
        "Deposited",
        "WithdrawalRequested",
        "Withdrawn",
        "Redeemed",
        "FeesWithdrawn",
        "Challenged",
        "ChallengeAnswered",
        "ChallengeUpheld",
        "BondWithdrawn",
        "VerifierEndpointAnnounced",
    } <= kinds
    verifier = played.accounts[VERIFIERS[0]]
    pay = page.inner_text(f'.ev[data-event="RewardsClaimed"][data-tx="{claim_tx(chain, verifier)}"] .ev-text')
    assert pay.startswith("verifier ") and "of verifier pay for epoch" in pay
    announced = page.inner_text('.ev[data-event="VerifierEndpointAnnounced"] .ev-text')
    assert announced == f"verifier {short(verifier)} takes clients' signed answers at http://verifier-a.example:8100"
    page.click('#event-filters button[data-category="slashing"]')
    assert feed_rows(page) == [e for e in expected if e[0] in ("Slashed", "SlashDeposited")]
    bad = played.accounts[4].lower()
    slashed = page.inner_text(f'.ev[data-event="Slashed"][data-server="{bad}"] .ev-text')
    assert "slashed 1 ETH" in slashed and "in epoch 1" in slashed
    page.click('#event-filters button[data-category="all"]')
    page.click("#more-events")
    check_payment_and_challenge_events(page, chain, played.accounts[CLIENT], expected)
    page.click('#event-filters button[data-category="all"]')
    page.goto(page.url.split("#")[0] + "#/")
    page.wait_for_selector("#servers tbody tr")


def short(address: str) -> str:
    """The page's short form of an address (format.js short)."""
    address = Web3.to_checksum_address(address)
    return f"{address[:6]}…{address[-4:]}"


def event_text(page, name: str, log) -> str:
    return page.inner_text(f'.ev[data-event="{name}"][data-tx="{Web3.to_hex(log.transactionHash)}"] .ev-text')


def check_payment_and_challenge_events(page, chain: Protocol, client: str, expected) -> None:
    """Receipts redeemed and challenges worded from their logs, and filed under payments and challenges."""
    since = chain.deployment.block
    redeemed = chain.payments.events.Redeemed().get_logs(from_block=since)
    assert len(redeemed) == 2
    for log in redeemed:
        a = log.args
        index = chain.w3.eth.accounts.index(a.server)
        owed = PRICES[index] * RECEIPT_TOKENS[index] * SERVERS[index][2]  # price x tokens x the server's layers
        assert a.client == client and a.paid == a.amount == owed
        assert event_text(page, "Redeemed", log) == (
            f"{short(a.server)} redeemed client {short(client)}'s receipt for epoch {a.epoch}: {wei_text(a.paid)} in fees"
        )
    challenged = {log.args.id: log.args for log in chain.challenges.events.Challenged().get_logs(from_block=since)}
    (upheld,) = chain.challenges.events.ChallengeUpheld().get_logs(from_block=since)
    opened = challenged[upheld.args.id]
    assert upheld.args.server == opened.server == Web3.to_checksum_address(chain.w3.eth.accounts[EQUIVOCATOR])
    assert upheld.args.slashed == ETHER // 2 and chain.server(opened.server).status == Status.DEACTIVATED
    assert event_text(page, "ChallengeUpheld", upheld) == (
        f"{short(opened.server)} did not prove its signed answer #{opened.index} of epoch {opened.epoch} committed: "
        f"challenge upheld, slashed {eth_text(upheld.args.slashed)}"
    )
    (answered,) = chain.challenges.events.ChallengeAnswered().get_logs(from_block=since)
    proven = challenged[answered.args.id]
    assert event_text(page, "ChallengeAnswered", answered) == (
        f"{short(proven.server)} answered the challenge of its signed answer #{proven.index} of epoch {proven.epoch} "
        f"with its Merkle proof and keeps the {eth_text(answered.args.bond)} bond"
    )
    (left,) = chain.payments.events.Withdrawn().get_logs(from_block=since)  # a client's, not a server's
    assert (
        event_text(page, "Withdrawn", left)
        == f"client {short(client)} withdrew {eth_text(left.args.amount)} of its deposit"
    )
    payments = {"PriceAnnounced", "Deposited", "WithdrawalRequested", "Redeemed", "FeesWithdrawn"}
    left_tx = Web3.to_hex(left.transactionHash)
    page.click('#event-filters button[data-category="payments"]')
    assert feed_rows(page) == [e for e in expected if e[0] in payments or e[2] == left_tx]
    page.click('#event-filters button[data-category="challenges"]')
    assert feed_rows(page) == [
        e for e in expected if e[0] in {"Challenged", "ChallengeAnswered", "ChallengeUpheld", "BondWithdrawn"}
    ]


def test_server_page_shows_its_history(page, chain, history):
    played = history[0]
    bad = played.accounts[4]
    page.click(f'#servers tr[data-address="{bad.lower()}"] a.addr')
    page.wait_for_selector("#server-page table.history")
    assert int(page.get_attribute('[data-kpi="stake"]', "data-value")) == chain.server(bad).stake
    assert page.inner_text('[data-kpi="slashes"]') == "1"
    rows = page.eval_on_selector_all(
        "table.history tbody tr",
        "trs => trs.map(tr => [+tr.dataset.epoch, "
        "Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map(td => [td.dataset.col, td.dataset.value ?? td.innerText]))])",
    )
    assert [r[0] for r in rows] == [1, 0]
    for epoch, cells in rows:
        score = chain.score_of(epoch, bad)
        work = chain.commitment_of(epoch, bad)
        assert (int(cells["work"]), int(cells["acc"]), int(cells["score"])) == (work.work_units, score.acc, score.score)
        assert int(cells["share"]) == chain.pool.functions.shareOf(epoch, bad).call()
    assert page.inner_text('tr[data-epoch="1"] [data-col="outcome"]') == "slashed"
    charts = page.evaluate("efedDashboard.charts()")
    ends = last_block_of_epochs(chain)
    registry = chain.registry.functions
    record = chain._decoder(ServerRecord, "ServerRegistry", "getServer")  # by the ABI's names, never by position
    stake = charts["server-stake"]["series"][0]["raw"]
    assert [(p["epoch"], int(p["stake"]), int(p["unbonding"])) for p in stake] == [
        (
            e,
            *(lambda r: (r.stake, r.unbonding))(
                record(registry.getServer(bad).call(block_identifier=ends[e]), address=bad)
            ),
        )
        for e in range(stake[0]["epoch"], chain.current_epoch() + 1)
    ]
    assert [int(p["stake"]) for p in stake][:2] == [2 * ETHER, 2 * ETHER] and int(stake[-1]["stake"]) == ETHER
    events = page.eval_on_selector_all(".feed .ev", "evs => evs.map(e => e.dataset.server)")
    assert events and set(events) == {bad.lower()}
    screenshot(page, "server-laptop")
    page.goto(page.url.split("#")[0] + "#/")
    page.wait_for_selector("#servers tbody tr")


@pytest.mark.parametrize("index", [1, 2])  # fees redeemed and withdrawn; fees redeemed and still in Payments
def test_server_page_shows_fees_beside_rewards_and_the_price(page, chain, history, index):
    played = history[0]
    server, client = played.accounts[index], played.accounts[CLIENT]
    page.goto(page.url.split("#")[0] + f"#/server/{server}")
    page.wait_for_selector("#server-page table.history")
    redeemed, withdrawn = fees_redeemed(chain, server, client), fees_withdrawn(chain, server)
    kpi = lambda name: page.get_attribute(f'[data-kpi="{name}"]', "data-value")  # noqa: E731
    assert int(kpi("fees")) == redeemed > 0 and page.inner_text('[data-kpi="fees"]') == wei_text(redeemed)
    assert int(kpi("fees-withdrawn")) == withdrawn
    assert redeemed - withdrawn == chain.payments.functions.feesOf(server).call()
    assert int(kpi("price")) == chain.payments.functions.priceOf(server).call() == PRICES[index]
    assert page.inner_text('[data-kpi="price"]') == price_text(chain, server)
    pending = chain.pool.functions.pendingRewards(server, list(range(chain.current_epoch() + 1))).call()
    assert int(kpi("pending")) == pending  # the pool rewards, beside
    fees = page.eval_on_selector_all(
        'table.history td[data-col="fees"]', "tds => tds.map(td => [+td.closest('tr').dataset.epoch, td.dataset.value])"
    )
    by_epoch = {e: int(v) for e, v in fees if v}
    assert by_epoch == {2: chain.payments.functions.redeemed(2, client, server).call()}
    page.goto(page.url.split("#")[0] + "#/")
    page.wait_for_selector("#servers tbody tr")


def test_a_new_transaction_shows_without_reload(page, chain, history):
    played = history[0]
    server = played.accounts[3]
    page.evaluate("window.__sameDocument = true")
    before = int(row_values(page, server)["stake"]["value"])
    receipt = played.as_(3).tx.send(played.as_(3).registry.functions.addStake(), value=ETHER // 4)
    page.wait_for_function(f"efedDashboard.block >= {receipt['blockNumber']}", timeout=10_000, polling=50)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    after = row_values(page, server)["stake"]
    assert int(after["value"]) == before + ETHER // 4 == chain.server(server).stake
    newest = feed_rows(page)[0]
    assert newest[:3] == ("StakeAdded", receipt["blockNumber"], Web3.to_hex(receipt["transactionHash"]))
    assert page.get_attribute("#chain-chip", "data-state") == "live"


def test_screenshots_of_the_main_views(browser, page, dash):
    screenshot(page, "overview-laptop")
    page.goto(dash + "#/epochs")
    page.wait_for_selector("#param-table")
    screenshot(page, "epochs-laptop")
    page.goto(dash + "#/")
    phone = open_page(browser, dash, viewport=PHONE)
    try:
        screenshot(phone, "overview-phone")
        phone.goto(dash + "#/events")
        phone.wait_for_selector("#event-feed .ev")
        screenshot(phone, "events-phone", full_page=False)
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
            "the page scrolls sideways on a phone"
        )
    finally:
        phone.context.close()
