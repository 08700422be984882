"""The alert rules and the Grafana dashboard of deploy/monitoring, checked with the real promtool.

`promtool check rules` parses the rules, `promtool test rules` runs their unit tests (each alert
fires in one case and stays quiet in another), the PrometheusRule for the Prometheus Operator
carries the same groups, and every metric a rule or a dashboard panel uses is one the server
exports. The dashboard's queries are parsed by promtool as recording rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.exported_metrics import names_in, sample_names
from tests.support.paths import REPO_ROOT
from tests.support.prometheus import promtool

MONITORING = REPO_ROOT / "deploy" / "monitoring"
RULES = MONITORING / "rules.yml"
RULE_TESTS = MONITORING / "rules.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
PROMETHEUS_RULE = (
    REPO_ROOT / "deploy" / "kubernetes" / "components" / "monitoring" / "prometheusrule.yaml"
)
# Grafana's interval variables, as a fixed range promtool can parse
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
ALERTS = {
    "RaibidQueueWaitHigh", "RaibidJobsStuckPending", "RaibidNoAgentClaiming",
    "RaibidWebhookRejectionsRising", "RaibidWebhookSpoolNotDraining", "RaibidRedisNotReady",
    "RaibidCommitStatusesFailing",
}  # fmt: skip


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_parse_and_are_the_alerts_the_operators_need() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    assert {rule["alert"] for rule in rules()} == ALERTS


def test_the_rule_unit_tests_pass() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fires == ALERTS
    assert quiet == ALERTS


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    # the quiet case of RaibidRedisNotReady fails once the rule ignores its `for`
    broken = RULES.read_text().replace("        for: 2m\n", "")
    (tmp_path / "rules.yml").write_text(broken)
    (tmp_path / "rules.test.yml").write_text(RULE_TESTS.read_text())
    tested = promtool("test", "rules", str(tmp_path / "rules.test.yml"))
    assert tested.returncode != 0
    assert "RaibidRedisNotReady" in tested.stdout + tested.stderr


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"] == yaml.safe_load(RULES.read_text()), (
        "copy the groups of deploy/monitoring/rules.yml into the PrometheusRule's spec"
    )


def test_every_metric_a_rule_uses_is_exported() -> None:
    exported = sample_names()
    for rule in rules():
        used = names_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{panel['title']} {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_is_json_with_a_query_on_every_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "raibid-api"
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(graphs) >= 10
    assert all(panel.get("targets") for panel in graphs)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def as_recording_rules(queries: list[tuple[str, str]]) -> str:
    records = []
    for number, (_, expr) in enumerate(queries):
        for variable, value in GRAFANA_INTERVALS.items():
            expr = expr.replace(variable, value)
        records.append({"record": f"dashboard:query_{number}", "expr": expr})
    return yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]})


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    path = tmp_path / "dashboard-queries.yml"
    queries = panel_queries()
    path.write_text(as_recording_rules(queries))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_promtool_refuses_a_malformed_query(tmp_path: Path) -> None:
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(as_recording_rules([("broken", "sum(rate(raibid_jobs_created_total[5m])")]))
    assert promtool("check", "rules", str(path)).returncode != 0


@pytest.mark.parametrize(("panel", "expr"), panel_queries(), ids=lambda v: str(v)[:60])
def test_every_metric_a_panel_uses_is_exported(panel: str, expr: str) -> None:
    used = names_in(expr)
    assert used, panel
    assert used <= sample_names(), used - sample_names()
