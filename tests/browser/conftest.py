"""Browser tests: the dashboard in headless Debian Chromium, against the real stack.

The session's worker (`tests.stack`) projects the demo journeys into Redis, ``tandem api``
serves them on a free local port, and Chromium renders the page (``--dump-dom``,
``--screenshot``): no WebDriver, no Playwright download, nothing but `/usr/bin/chromium`
(``make browser-deps``). A missing Chromium fails the tests — it must never skip them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from events import parse_touchpoint
from streams import journey as core
from streams import workflow
from streams.playbooks import load_configured_playbook
from streams.projection import JourneyProjection
from streams.samples import demo_journeys
from streams.settings import Settings
from tests.integration.helpers import comparable, eventually, publish_documents
from tests.stack import WorkerProcess, settings_env

DEMO_PREFIX = "browser"
CHROMIUM_TIMEOUT_S = 40.0
# Without the network flags Chromium keeps dialling Google's hosts, which a closed network
# refuses (slow, noisy); a fresh profile keeps runs independent of each other.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root (CI containers)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `integration` too: they need Kafka, Redis and a worker, so `make unit` leaves them out.
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)


class Chromium:
    """Headless Chromium, one process per page load."""

    def __init__(self, executable: str, profiles: Path) -> None:
        self.executable = executable
        self.profiles = profiles
        self.runs = 0

    def _run(self, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        profile = self.profiles / f"profile-{self.runs}"
        command = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, url]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"chromium failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def dom(self, url: str, budget_ms: int = 5000) -> Page:
        """The DOM after the page's scripts ran for `budget_ms` of virtual time."""
        html = self._run(url, f"--virtual-time-budget={budget_ms}", "--dump-dom").stdout
        return Page.parse(html)

    def screenshot(self, url: str, path: Path, size: str = "1280,900") -> Path:
        """A PNG of the page after its first refresh."""
        self._run(url, "--virtual-time-budget=5000", f"--window-size={size}",
                  f"--screenshot={path}")  # fmt: skip
        return path


@dataclass
class Node:
    """An element of the dumped DOM: tag, attributes, its text (descendants' included)."""

    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Node] | None = None

    def find_all(self, testid: str) -> list[Node]:
        found = []
        for child in self.children or []:
            if child.attrs.get("data-testid") == testid:
                found.append(child)
            found.extend(child.find_all(testid))
        return found

    def find(self, testid: str) -> Node:
        found = self.find_all(testid)
        assert found, f"no element with data-testid={testid!r}"
        return found[0]

    def words(self) -> str:
        return " ".join(self.text.split())


class Page(HTMLParser):
    """A tiny DOM of Chromium's ``--dump-dom`` output (enough for test ids and texts)."""

    VOID = frozenset({"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, children=[])
        self._open: list[Node] = [self.root]

    @classmethod
    def parse(cls, html: str) -> Node:
        page = cls()
        page.feed(html)
        page.close()
        return page.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, children=[])
        assert self._open[-1].children is not None
        self._open[-1].children.append(node)
        if tag not in self.VOID:
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._open[-1].tag in ("script", "style"):
            return
        for node in self._open:
            node.text += data


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    """Debian's Chromium; its absence is a failure, not a skip."""
    executable = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if executable is None:
        pytest.fail("Chromium is missing: run `make browser-deps` (installs Debian's chromium)")
    return Chromium(executable, tmp_path_factory.mktemp("chromium"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def api_key(settings: Settings) -> str:
    """A read key made by `tandem keys create` in the session's keys file, which the API reads
    (the dashboard's data is personal: the page needs a read key as any client does)."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "keys", "create", "--scope", "read",
         "--name", f"browser-tests-{time.monotonic_ns()}"],
        env=settings_env(settings), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="session")
def api_url(settings: Settings, api_key: str) -> Iterator[str]:
    """``tandem api`` in a subprocess with the session's settings, on a free local port."""
    port = _free_port()
    log_path = settings.data_dir / "api.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "api", "--host", "127.0.0.1",
             "--port", str(port)],
            env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tandem api did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class Demo:
    """The demo journeys as the worker projected them."""

    snapshots: dict[str, dict[str, Any]]
    handoff_customer: str
    """Ada's customer id: the demo's sales-ready lead (a hand-off signal)."""


@pytest_asyncio.fixture(scope="session")
async def demo(
    settings: Settings, worker: WorkerProcess, projection: JourneyProjection
) -> AsyncIterator[Demo]:
    """Publish the demo journeys and wait until Redis holds what the pure core computes."""
    documents = demo_journeys(datetime.now(UTC) - timedelta(hours=1), prefix=DEMO_PREFIX)
    await publish_documents(settings, documents)
    playbook = load_configured_playbook(settings)
    result = workflow.replay([parse_touchpoint(d) for d in documents], playbook)
    expected = {
        cid: comparable(core.snapshot(record, playbook).model_dump(mode="json"))
        for cid, record in result.records.items()
        if cid != core.LEDGER_CUSTOMER  # shared by every test of the session
    }

    async def live() -> dict[str, Any]:
        found = {}
        for cid in expected:
            snapshot = await projection.snapshot(cid)
            if snapshot is not None:
                found[cid] = snapshot
        return found

    snapshots = await eventually(
        live, lambda found: {c: comparable(s) for c, s in found.items()} == expected, timeout=60
    )
    assert set(snapshots) == set(expected), "the worker did not project the demo journeys"
    ada = await projection.resolve(f"ada@{DEMO_PREFIX}-lovelace.example")
    assert ada is not None and ada in snapshots
    yield Demo(snapshots, ada)
