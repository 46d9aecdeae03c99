"""The client commands (log, search, tail, show, export, verify event-id) against a real
server process, run in-process with Typer's runner."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import typer
from typer.testing import CliRunner, Result

from tests.cli.real import trailkeep
from tests.fast_server import fast_server
from tests.process import Server, free_port
from trailkeep.cli.app import app
from trailkeep.merkle import Signer

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
CLIENT_COMMANDS = ("log", "search", "tail", "show", "export")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"TRAILKEEP_CHECKPOINT_INTERVAL": "0.1", "TRAILKEEP_STREAM_CHECKPOINT_INTERVAL": "0.1"}
    with fast_server(tmp_path_factory.mktemp("cli"), env) as running:
        yield running


def run(server: Server, *args: str, role: str = "admin", stdin: str | None = None) -> Result:
    env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens[role]}
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def unique() -> str:
    return f"cli.{uuid.uuid4().hex[:8]}"


def logged(server: Server, *args: str) -> dict[str, Any]:
    result = run(server, "log", *args, "--json")
    assert result.exit_code == 0, result.output
    event: dict[str, Any] = orjson.loads(result.stdout)
    return event


class TestLog:
    """`trailkeep log` records events from options or JSON."""

    def test_options(self, server: Server) -> None:
        action = unique()
        result = run(server, "log", action, "--actor-id", "u-1", "--outcome", "success",
                     "--meta", "plan=pro", "--meta", "seats=3", role="writer")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert re.fullmatch(r"logged evt_\w+ \(seq \d+\)\n", result.stdout)
        event = logged(server, action, "--target-id", "doc-1", "--target-type", "document")
        assert event["target"] == {"id": "doc-1", "type": "document"}
        found = orjson.loads(run(server, "search", "--action", action, "--json").stdout)
        first = found["events"][-1]
        assert first["metadata"] == {"plan": "pro", "seats": 3}
        assert first["actor"] == {"id": "u-1"}

    def test_json_body_from_stdin(self, server: Server) -> None:
        action = unique()
        lines = '{"actor": {"id": "a"}}\n{"action": "other", "actor": {"id": "b"}}\n'
        result = run(server, "log", action, "--actor-id", "zz", "--json-body", "-", stdin=lines)
        assert result.exit_code == 0, result.output
        assert result.stdout.count("logged evt_") == 2
        found = orjson.loads(run(server, "search", "--actor-id", "a", "--json").stdout)
        assert [(e["action"], e["actor"]["id"]) for e in found["events"]] == [(action, "a")]

    def test_needs_an_action(self, server: Server) -> None:
        result = run(server, "log", "--actor-id", "u-1")
        assert result.exit_code == 1
        assert "needs an action" in result.stderr


class TestSearch:
    """`trailkeep search` filters, limits and prints a table or JSON."""

    def test_filters_and_formats(self, server: Server) -> None:
        action = unique()
        for who in ("u-1", "u-2", "u-1"):
            logged(server, action, "--actor-id", who, "--actor-email", f"{who}@x.io")
        as_json = run(server, "search", "--action", action, "--filter", "actor.email=u-1@x.io",
                      "--json", "--oldest-first")  # fmt: skip
        events = orjson.loads(as_json.stdout)["events"]
        assert [e["actor"]["id"] for e in events] == ["u-1", "u-1"]
        assert events[0]["seq"] < events[1]["seq"]
        lines = run(server, "search", "--action", action, "--limit", "2", "--jsonl").stdout
        assert len(lines.splitlines()) == 2
        table = run(server, "search", "--action", action)
        assert table.exit_code == 0
        assert table.stdout.count("u-2") == 1

    def test_bad_filter_name(self, server: Server) -> None:
        result = run(server, "search", "--filter", "color=red")
        assert result.exit_code == 1
        assert "NAME=VALUE" in result.stderr

    def test_nothing_found(self, server: Server) -> None:
        result = run(server, "search", "--action", unique())
        assert result.exit_code == 0
        assert "no events match" in result.stderr


class TestNewcomerSearch:
    """`trailkeep search WORD` works as typed, and the table's ids can be copied."""

    def test_positional_query(self, server: Server, tmp_path: Path) -> None:
        word = uuid.uuid4().hex[:10]
        event = logged(server, unique(), "--message", f"shared with {word} today")
        env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens["reader"]}
        found = trailkeep("search", word, cwd=tmp_path, env=env)
        assert found.returncode == 0, found.stderr
        assert event["id"] in found.stdout  # whole, in an 80-column terminal
        as_json = orjson.loads(trailkeep("search", word, "--json", cwd=tmp_path, env=env).stdout)
        assert [e["id"] for e in as_json["events"]] == [event["id"]]
        both = run(server, "search", word, "--q", word)
        assert both.exit_code == 1
        assert "give the query once" in both.stderr

    def test_limit_hint(self, server: Server) -> None:
        action = unique()
        for _ in range(3):
            logged(server, action)
        capped = run(server, "search", "--action", action, "--limit", "2", "--jsonl")
        assert len(capped.stdout.splitlines()) == 2
        assert "2 of 3 shown" in capped.stderr
        whole = run(server, "search", "--action", action, "--limit", "3")
        assert "shown" not in whole.stderr


class TestShowAndVerify:
    """`trailkeep show` and `verify event-id` prove an event against the log's key."""

    def test_verified(self, server: Server) -> None:
        event = logged(server, unique())
        key = httpx.get(f"{server.url}/v1/log/key").text.strip()
        shown = run(server, "show", event["id"], "--key", key)
        assert shown.exit_code == 0, shown.output
        assert event["id"] in shown.stdout
        assert f"VERIFIED leaf {event['seq']} of trailkeep.local/acme" in shown.stdout
        assert "pinned key" in shown.stdout
        verified = run(server, "verify", "event-id", event["id"])
        assert verified.exit_code == 0, verified.output
        assert "the server's key" in verified.stdout

    def test_wrong_key(self, server: Server) -> None:
        event = logged(server, unique())
        other = Signer.generate("trailkeep.local").verifier().key_string()
        result = run(server, "show", event["id"], "--key", other, "--json")
        assert result.exit_code == 2
        assert "NOT VERIFIED" in result.stderr
        assert orjson.loads(result.stdout)["id"] == event["id"]

    def test_json_stdout_is_only_json(self, server: Server, tmp_path: Path) -> None:
        """`trailkeep show ID --json | jq .` works: the verdict goes to stderr."""
        event = logged(server, unique())
        env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens["reader"]}
        shown = trailkeep("show", event["id"], "--json", cwd=tmp_path, env=env)
        assert shown.returncode == 0, shown.stderr
        assert orjson.loads(shown.stdout)["id"] == event["id"]
        assert "VERIFIED" in shown.stderr

    def test_unknown_event(self, server: Server) -> None:
        result = run(server, "show", "evt_nope")
        assert result.exit_code == 1
        assert "404 NOT_FOUND" in result.stderr


class TestMachineReadableStdout:
    """With --json / --jsonl, stdout holds only JSON in every client command."""

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param(["log", "{action}", "--json"], id="log"),
            pytest.param(["search", "--action", "{action}", "--json"], id="search-json"),
            pytest.param(["search", "--action", "{action}", "--jsonl"], id="search-jsonl"),
            pytest.param(["search", "--action", "nothing.matches", "--json"], id="search-none"),
            pytest.param(
                [
                    "tail",
                    "--action",
                    "{action}",
                    "--from-start",
                    "--timeout",
                    "0.5",
                    "--jsonl",
                    "--checkpoints",
                ],
                id="tail",
            ),
            pytest.param(["show", "{id}", "--json"], id="show"),
            pytest.param(["show", "{id}", "--json", "--key", "{other}"], id="show-not-verified"),
        ],
    )
    def test_parses(self, server: Server, tmp_path: Path, args: list[str]) -> None:
        action = unique()
        event = logged(server, action)
        other = Signer.generate("trailkeep.local").verifier().key_string()
        values = {"action": action, "id": event["id"], "other": other}
        env = {"TRAILKEEP_URL": server.url, "TRAILKEEP_TOKEN": server.tokens["admin"]}
        result = trailkeep(*(a.format(**values) for a in args), cwd=tmp_path, env=env)
        assert result.returncode in (0, 2), result.stderr
        if "--jsonl" in args:
            assert all(orjson.loads(line) for line in result.stdout.splitlines())
        else:
            orjson.loads(result.stdout)


class TestTail:
    """`trailkeep tail` follows the stream."""

    def test_from_start(self, server: Server) -> None:
        action = unique()
        for _ in range(3):
            logged(server, action)
        result = run(server, "tail", "--action", action, "--from-start", "--timeout", "1",
                     "--jsonl", "--checkpoints")  # fmt: skip
        assert result.exit_code == 0, result.output
        items = [orjson.loads(line) for line in result.stdout.splitlines()]
        events = [i for i in items if "action" in i]
        assert [e["action"] for e in events] == [action] * 3
        assert any("checkpoint" in i for i in items)
        lines = run(server, "tail", "--action", action, "--from-start", "--timeout", "0.5")
        assert lines.stdout.count(action) == 3
        queried = run(server, "tail", "--q", f"action:{action}", "--from-start", "--timeout",
                      "0.5", "--jsonl")  # fmt: skip
        assert len(queried.stdout.splitlines()) == 3


def _post(server: Server, action: str) -> None:
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}
    httpx.post(
        f"{server.url}/v1/events", json={"action": action}, headers=headers
    ).raise_for_status()


class TestTailTiming:
    """`tail` prints ids, stops on time, and fails at once against a dead server."""

    def test_ids(self, server: Server) -> None:
        event = logged(server, unique())
        lines = run(server, "tail", "--action", event["action"], "--from-start", "--timeout", "0.5")
        assert event["id"] in lines.stdout

    def test_timeout_kept_when_events_arrive(self, server: Server) -> None:
        action = unique()
        # Posted over HTTP, not with CliRunner: a second CliRunner on another thread would swap
        # sys.stdout under the one running `tail`, and the two outputs would interleave.
        timer = threading.Timer(1.5, _post, (server, action))
        timer.start()
        started = time.monotonic()
        result = run(server, "tail", "--action", action, "--timeout", "3", "--jsonl")
        took = time.monotonic() - started
        timer.join()
        assert result.exit_code == 0, result.output
        assert [orjson.loads(x)["action"] for x in result.stdout.splitlines()] == [action]
        # A timeout restarted by the event would end at 4.5 s at the earliest.
        assert 2.9 < took < 4.4, took

    def test_dead_server(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        started = time.monotonic()
        result = CliRunner().invoke(app, ["tail", "--url", url, "--token", "t"])
        assert time.monotonic() - started < 2
        assert result.exit_code == 1
        assert f"cannot reach {url}" in result.stderr


class TestExport:
    """`trailkeep export` writes a file that verifies offline."""

    def test_everything_verifies(self, server: Server, tmp_path: Path) -> None:
        logged(server, unique())
        target = tmp_path / "all.jsonl"
        result = run(server, "export", "-o", str(target))
        assert result.exit_code == 0, result.output
        assert f"to {target}" in result.stdout
        key = httpx.get(f"{server.url}/v1/log/key").text.strip()
        checked = CliRunner().invoke(app, ["verify", "dump", str(target), "--key", key])
        assert checked.exit_code == 0, checked.output
        assert "OK" in checked.stdout

    def test_csv_selection(self, server: Server, tmp_path: Path) -> None:
        action = unique()
        logged(server, action)
        logged(server, action)
        target = tmp_path / "x.csv"
        result = run(server, "export", "--format", "csv", "--action", action, "-o", str(target))
        assert result.exit_code == 0, result.output
        assert "wrote 2 events" in result.stdout
        assert len(target.read_text().splitlines()) == 3


class TestExportBundle:
    """`trailkeep export --format bundle` writes a file `verify bundle` proves complete; each
    kind of file gets its own exit status from the verifiers."""

    def verify(self, server: Server, kind: str, path: Path, key: str | None = None) -> Result:
        key = key or httpx.get(f"{server.url}/v1/log/key").text.strip()
        return CliRunner().invoke(app, ["verify", kind, str(path), "--key", key])

    def test_bundle_verifies_complete(self, server: Server, tmp_path: Path) -> None:
        action = unique()
        logged(server, action)
        logged(server, unique())
        logged(server, action)
        target = tmp_path / "b.jsonl"
        result = run(server, "export", "--format", "bundle", "--action", action, "-o", str(target))
        assert result.exit_code == 0, result.output
        assert "verify bundle" in result.output
        checked = self.verify(server, "bundle", target)
        assert checked.exit_code == 0, checked.output
        assert "OK 2 events" in checked.stdout
        assert "COMPLETE" in checked.stdout

    def test_seq_range(self, server: Server, tmp_path: Path) -> None:
        logged(server, unique())
        target = tmp_path / "r.jsonl"
        result = run(server, "export", "--format", "bundle", "--seq-start", "1",
                     "--seq-end", "2", "-o", str(target))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "wrote 1 leaves" in result.stdout
        checked = self.verify(server, "bundle", target)
        assert checked.exit_code == 0, checked.output
        assert "in seq [1, 2)" in checked.stdout

    def test_tampered_bundle_fails_with_2(self, server: Server, tmp_path: Path) -> None:
        action = unique()
        logged(server, action)
        target = tmp_path / "t.jsonl"
        assert run(server, "export", "--format", "bundle", "-o", str(target)).exit_code == 0
        lines = target.read_bytes().splitlines()
        target.write_bytes(b"\n".join(lines[:-1]) + b"\n")  # the last leaf dropped
        checked = self.verify(server, "bundle", target)
        assert checked.exit_code == 2, checked.output
        assert "truncated" in checked.output

    def test_wrong_key_fails_with_2(self, server: Server, tmp_path: Path) -> None:
        target = tmp_path / "k.jsonl"
        assert run(server, "export", "--format", "bundle", "-o", str(target)).exit_code == 0
        other = Signer.generate(httpx.get(f"{server.url}/v1/log/key").text.split("+")[0])
        checked = self.verify(server, "bundle", target, other.verifier().key_string())
        assert checked.exit_code == 2, checked.output
        assert "not the pinned key" in checked.output.replace("\n", " ")

    @pytest.mark.parametrize(
        ("kind", "args", "needle"),
        [
            pytest.param(
                "dump", ["--action", "x"], "--format bundle", id="filtered-export-as-dump"
            ),
            pytest.param("bundle", ["--action", "x"], "--format bundle", id="export-as-bundle"),
            pytest.param("bundle", [], "verify dump", id="dump-as-bundle"),
            pytest.param("dump", ["--format", "bundle"], "verify bundle", id="bundle-as-dump"),
        ],
    )
    def test_another_kind_of_file_exits_3(
        self, server: Server, tmp_path: Path, kind: str, args: list[str], needle: str
    ) -> None:
        logged(server, unique())
        target = tmp_path / "f.jsonl"
        assert run(server, "export", *args, "-o", str(target)).exit_code == 0
        checked = self.verify(server, kind, target)
        assert checked.exit_code == 3, checked.output
        assert needle in checked.output.replace("\n", " ")


class TestErrors:
    """Failures say what is wrong and what to check."""

    def test_unreachable(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        result = CliRunner().invoke(app, ["search", "--url", url, "--token", "t"])
        assert result.exit_code == 1
        assert f"cannot reach {url}: is `trailkeep serve` running?" in result.stderr

    def test_bad_token(self, server: Server) -> None:
        result = CliRunner().invoke(app, ["search", "--url", server.url, "--token", "tkc_a.b"])
        assert result.exit_code == 1
        assert "401" in result.stderr
        assert "check TRAILKEEP_TOKEN" in result.stderr

    def test_no_token(self, server: Server) -> None:
        result = CliRunner().invoke(
            app, ["search", "--url", server.url], env={"TRAILKEEP_TOKEN": ""}
        )
        assert result.exit_code == 1
        assert "no API token" in result.stderr

    def test_wrong_role(self, server: Server) -> None:
        result = run(server, "search", role="writer")
        assert result.exit_code == 1
        assert "403" in result.stderr


def _options(command: Any) -> list[str]:
    return [opt for p in command.params for opt in p.opts if opt.startswith("--")]


class TestDocs:
    """docs/cli.md documents every client command and every one of its options."""

    @pytest.mark.parametrize("name", [*CLIENT_COMMANDS, "verify event-id"])
    def test_documented(self, name: str) -> None:
        command: Any = typer.main.get_command(app)
        for part in name.split():
            command = command.commands[part]
        text = DOCS.read_text()
        assert f"trailkeep {name}" in text
        missing = [o for o in _options(command) if o != "--help" and f"`{o}" not in text]
        assert not missing, f"docs/cli.md lacks {missing} of `trailkeep {name}`"
