"""Fuzzing: schemathesis against loaxa's own OpenAPI document, every operation.

A real uvicorn on a loopback port serves the app over a migrated database holding two
communes (tests/world.py). Every operation gets generated requests, valid and invalid
(schemathesis' positive and negative modes), each sent as one of: no token, viewer, editor,
approver, admin, a device. Then the stateful phase: schemathesis chains operations through
the links it infers (a created segment is read, changed, submitted...), as an editor, an
approver and an admin. gTTS talks to a stub on 127.0.0.1.

Asserted for every answer: no 5xx, the status is one the operation documents, the media type
and the body match the documented schema. Failures are collected, not raised at once, so a
run reports all of them (and Hypothesis does not spend the budget shrinking one).

Budget: FUZZ_EXAMPLES cases per operation and mode, FUZZ_STATEFUL scenarios per role; about
two minutes on CI's two cores. LOAXA_FUZZ_EXAMPLES raises it for a longer local run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.world import World

pytestmark = [pytest.mark.fuzz, pytest.mark.slow, pytest.mark.timeout(1800)]

FUZZ_EXAMPLES = int(os.environ.get("LOAXA_FUZZ_EXAMPLES", "12"))
FUZZ_STATEFUL = int(os.environ.get("LOAXA_FUZZ_STATEFUL", "8"))
PRINCIPALS = ("anon", "viewer", "editor", "approver", "admin", "device")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SETTINGS = hypothesis.settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: CI failures reproduce locally
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
    max_examples=FUZZ_EXAMPLES,
    report_multiple_bugs=False,
)


class Tally:
    """What was sent and what came back, and every failure with a way to replay it."""

    def __init__(self) -> None:
        self.cases = 0
        self.operations: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        # Valid cases (by the schema) the app refused as invalid: where the schema says less
        # than the validation enforces.
        self.bounced: Counter[str] = Counter()

    def check(self, case: schemathesis.Case, response: Any, who: str, phase: str) -> None:
        self.cases += 1
        self.operations.add(case.operation.label)
        self.statuses[response.status_code] += 1
        if phase == "positive" and response.status_code == 422:
            self.bounced[case.operation.label] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # a FailureGroup, or one AssertionError
            text = str(exc).strip().splitlines()
            self.failures.append(
                f"[{phase}, as {who}] {case.operation.label} -> {response.status_code}: "
                f"{' | '.join(text[:6])}\n    {case.as_curl_command()}"
            )


def _with_principal(case: schemathesis.Case, world: World, who: str) -> None:
    headers = dict(case.headers or {})
    for name in list(headers):
        if name.lower() == "authorization":
            del headers[name]
    headers.update(world.headers[who])
    case.headers = headers


def test_fuzz_every_operation_no_server_error_and_answers_as_documented(
    server_url: str, world: World, busy_google: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    session = requests.Session()
    tally = Tally()
    started = time.monotonic()

    operations = [result.ok() for result in schema.get_all_operations()]

    def fuzz(operation: Any, mode: GenerationMode) -> None:
        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode), who=st.sampled_from(PRINCIPALS))
        def run(case: schemathesis.Case, who: str) -> None:
            _with_principal(case, world, who)
            response = case.call(session=session, base_url=server_url, timeout=60)
            tally.check(case, response, who, mode.value)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): only positive cases exist.
            assert mode is GenerationMode.NEGATIVE, operation.label

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode)
    stateless = tally.cases

    for who in ("editor", "approver", "admin"):

        class Machine(schema.as_state_machine()):  # type: ignore[misc]
            principal = who

            def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
                _with_principal(case, world, self.principal)
                return {"session": session, "base_url": server_url, "timeout": 60}

            def validate_response(
                self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
            ) -> None:
                tally.check(case, response, self.principal, "stateful")

        Machine.run(
            settings=hypothesis.settings(
                SETTINGS, max_examples=FUZZ_STATEFUL, stateful_step_count=6
            )
        )

    summary = (
        f"schemathesis: {len(operations)} operations, {stateless} stateless cases and "
        f"{tally.cases - stateless} stateful steps in {time.monotonic() - started:.0f} s; "
        f"statuses {dict(sorted(tally.statuses.items()))}; "
        f"5xx: {sum(n for s, n in tally.statuses.items() if s >= 500)}"
    )
    print(summary)
    print("valid cases answered 422, by operation:", dict(tally.bounced.most_common()))
    assert len(tally.operations) == len(operations), "an operation was never called"
    assert not tally.failures, summary + "\n" + "\n".join(tally.failures[:40])
