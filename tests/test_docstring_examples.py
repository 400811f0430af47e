"""The examples in the docstrings are the ones the tests run (issue #21).

Every object in `DOCUMENTED` must carry, under `Example:` in its docstring, at least one
```python block that is a complete program: it imports the object, defines a `@flow`
and calls it. Each block runs as written (``exec`` in a fresh namespace, in this process,
so it talks to the session's Prefect test server) against the session emulator, reset
and seeded with `demo_spec()` before every object, with the credentials saved as the
block `my-posthog` (a block's `"BLOCK_NAME"` placeholder stands for it). Then the Prefect API
must show the example's flow runs completed
and, for a task, a completed run of that very task inside them; nothing the example
prints may hold a secret the client handled.

To cover flows or the credentials block, add them to `DOCUMENTED`: a `Flow` must also
appear among the example's flow runs; any other object needs only its example to run.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import re
import textwrap
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect import Flow, Task
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
)
from prefect.client.schemas.objects import FlowRun, StateType

from prefect_posthog import PostHogCredentials
from prefect_posthog import tasks as posthog_tasks
from prefect_posthog.client import SECRETS
from prefect_posthog.emulator import Emulator
from prefect_posthog.emulator.seed import demo_spec
from prefect_posthog.flows import (
    audit_project_secret_api_keys,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from prefect_posthog.flows.follow_rotation import follow_key_rotation
from tests.helpers import ADMIN_KEY

DOCUMENTED: list[Any] = [
    *(getattr(posthog_tasks, name) for name in posthog_tasks.__all__),
    PostHogCredentials, bulk_update_group_properties, rotate_project_secret_api_keys,
    reset_sharing_passwords, audit_project_secret_api_keys, follow_key_rotation,
]
"""Objects whose docstring examples must run: every task, the credentials block and every
flow."""

_EXAMPLE_SECTION = re.compile(r"^Examples?:\s*$", re.M)
_PYTHON_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```",
                           re.M | re.S)
# Task runs reach the API through Prefect's event pipeline, a moment after the flow ends.
_TASK_RUN_WAIT_SECONDS = 120.0


def name_of(obj: Any) -> str:
    return getattr(obj, "fn", obj).__name__


def examples_of(obj: Any) -> list[str]:
    """The ```python blocks of the docstring's `Example:` section, dedented."""
    doc = inspect.getdoc(getattr(obj, "fn", obj)) or ""
    section = _EXAMPLE_SECTION.search(doc)
    if section is None:
        return []
    return [textwrap.dedent(m.group("code")) for m in _PYTHON_BLOCK.finditer(doc, section.end())]


def _is_flow_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "flow") or (
        isinstance(target, ast.Attribute) and target.attr == "flow")


def check_program(code: str, name: str) -> None:
    """The block imports `name`, defines a @flow and calls it at module level."""
    tree = ast.parse(code)
    imported = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert name in imported, f"the example does not import {name}"
    flows = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
             and any(_is_flow_decorator(d) for d in node.decorator_list)}
    assert flows, "the example defines no @flow"
    called = {node.func.id for stmt in tree.body
              if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
              for node in ast.walk(stmt)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert flows & called, f"the example defines {sorted(flows)} but never calls it"


def run_program(code: str, filename: str) -> dict[str, Any]:
    """Run the block as a script; its source is registered so tracebacks show its lines."""
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    # A block's example names its document "BLOCK_NAME", as Prefect's block standards
    # require; the Prefect UI puts the real name there, as this does.
    code = code.replace('"BLOCK_NAME"', '"my-posthog"')
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, filename, "exec"), namespace)
    return namespace


def recent_flow_runs(client: SyncPrefectClient, since: datetime,
                     names: list[str] | None = None) -> list[FlowRun]:
    return client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=names)) if names else None,
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)))


def wait_for_task_run(client: SyncPrefectClient, task: Task, flow_run_ids: list[UUID]) -> None:
    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids))
    deadline = time.monotonic() + _TASK_RUN_WAIT_SECONDS
    seen: list[str] = []
    while time.monotonic() < deadline:
        runs = client.read_task_runs(flow_run_filter=flow_runs)
        seen = [f"{r.task_key}: {r.state_type}" for r in runs]
        if any(r.task_key == task.task_key and r.state_type == StateType.COMPLETED
               for r in runs):
            return
        time.sleep(0.5)
    pytest.fail(f"no completed run of task {task.task_key} in the example's flow runs "
                f"(task runs seen: {seen})")


def check_runs(obj: Any, namespace: dict[str, Any], since: datetime, earlier: set[UUID]
               ) -> None:
    """The example's flows ran to completion and, inside them, the documented object."""
    names = [value.name for value in namespace.values() if isinstance(value, Flow)]
    with get_client(sync_client=True) as client:
        runs = [r for r in recent_flow_runs(client, since, names) if r.id not in earlier]
        assert runs, f"no run of the example's flows {names}: the example never called them"
        assert all(r.state_type == StateType.COMPLETED for r in runs), [
            (r.name, r.state_type) for r in runs]
        if isinstance(obj, Flow):
            assert [r for r in recent_flow_runs(client, since, [obj.name])
                    if r.id not in earlier], f"the example never ran the flow {obj.name}"
        if isinstance(obj, Task):
            wait_for_task_run(client, obj, [r.id for r in runs])


@pytest.fixture
def demo(emulator: Emulator) -> Emulator:
    """The session emulator reset and seeded with the demo data; `my-posthog` saved."""
    emulator.seed(demo_spec())
    PostHogCredentials(host=emulator.url, personal_api_key=ADMIN_KEY, project_id=1,
                       rate_limit="").save("my-posthog", overwrite=True)
    return emulator


@pytest.mark.parametrize("obj", DOCUMENTED, ids=name_of)
def test_docstring_example_runs(obj: Any, demo: Emulator, capsys: pytest.CaptureFixture
                                ) -> None:
    name = name_of(obj)
    programs = examples_of(obj)
    assert programs, f"{name} has no ```python block under 'Example:' in its docstring"
    for index, code in enumerate(programs):
        check_program(code, name)
        # Runs already there are told apart by id; the margin only absorbs clock skew.
        since = datetime.now(UTC) - timedelta(seconds=5)
        with get_client(sync_client=True) as client:
            earlier = {r.id for r in recent_flow_runs(client, since)}
        namespace = run_program(code, f"<docstring example {name}[{index}]>")
        check_runs(obj, namespace, since, earlier)
    printed = capsys.readouterr().out
    assert SECRETS.redact(printed) == printed, "an example printed a secret"
