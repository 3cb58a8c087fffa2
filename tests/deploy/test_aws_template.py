"""deploy/aws/tracker.yaml, checked offline: the same tables as `tracker init-db`, the README's
settings as parameters, cfn-lint clean, checkov clean (each skip explained in place), and the
whole stack created in moto's CloudFormation, then used by `tracker init-db` and
`tracker fetch --once`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from common.schema import TABLES, TTL_ATTRIBUTE, TableSpec
from common.settings import Settings, variable
from tests.deploy.template import TABLE_RESOURCES, TEMPLATE, parameter_name, resources, template
from tests.helpers.waiting import until
from tracker import dynamodb_local

ROOT = Path(__file__).parents[2]
TRACKER = [sys.executable, "-m", "tracker"]
CHECKOV = ROOT / ".cache" / "tools" / "checkov" / "bin" / "checkov"
CHECKOV_ARGS = [str(CHECKOV), "--framework", "cloudformation", "--skip-download", "-o", "json"]
# Settings a deployment does not take as parameters, and why.
NOT_PARAMETERS = {
    "aws_endpoint_url": "real AWS: the SDK's endpoint",
    "aws_region": "the stack's region",
    "aws_access_key_id": "the task role",
    "aws_secret_access_key": "the task role",
    "notify_urls": "a secret (NotifyUrlsSecretArn), never a plain parameter",
    "ccxt_url": "ccxt is an optional extra the image does not carry",
    "host": "fixed: 0.0.0.0 in a container",
    "port": "fixed: 8080, the target group's port",
    "spool_dir": "the task's own /tmp volume",
    "state_dir": "the task's own /tmp volume (a new task reads the windows from the table)",
    "worker_id": "each task's host name, distinct per replica",
    "secret_key": "a secret (SecretKeySecretArn), never a plain parameter",
    "smtp_url": "a secret (SmtpUrlSecretArn), never a plain parameter",
}


def _table_properties(spec: TableSpec) -> dict[str, Any]:
    return dict(template()["Resources"][TABLE_RESOURCES[spec.name]]["Properties"])


@pytest.mark.parametrize("spec", TABLES, ids=lambda spec: spec.name)
def test_each_table_is_the_one_init_db_creates(spec: TableSpec) -> None:
    """Keys, types, indexes, billing, stream view and TTL attribute: init-db's request and the
    template's table agree, so a change to either that the other does not follow fails here."""
    wanted = spec.create_request("T")
    table = _table_properties(spec)
    assert table["TableName"] == {"Fn::Sub": f"${{TablePrefix}}-{spec.name}"}
    assert table["BillingMode"] == wanted["BillingMode"]
    assert table["KeySchema"] == wanted["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        wanted["AttributeDefinitions"], key=str
    )
    assert table.get("GlobalSecondaryIndexes", []) == wanted.get("GlobalSecondaryIndexes", [])
    stream = wanted.get("StreamSpecification")
    assert table.get("StreamSpecification") == (
        {"StreamViewType": stream["StreamViewType"]} if stream else None
    )
    ttl = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True} if spec.ttl else None
    assert table.get("TimeToLiveSpecification") == ttl
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    resource = template()["Resources"][TABLE_RESOURCES[spec.name]]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_the_template_has_no_table_init_db_does_not_know() -> None:
    assert set(resources("AWS::DynamoDB::Table")) == set(TABLE_RESOURCES.values())
    assert set(TABLE_RESOURCES) == {spec.name for spec in TABLES}


def _same(template_default: object, setting_default: object) -> bool:
    """Equal as the process reads them: `10` in the template is the setting's `10.0`."""
    if isinstance(setting_default, int | float) and not isinstance(setting_default, bool):
        return float(str(template_default)) == float(setting_default)
    return str(template_default) == str(setting_default)


def test_settings_are_parameters_with_the_readmes_names_and_defaults() -> None:
    """Every setting is a parameter named after its field, described by its variable and with
    the same default — or listed in NOT_PARAMETERS with the reason; every task gets them all."""
    parameters = template()["Parameters"]
    readme = (ROOT / "README.md").read_text()
    expected_env: dict[str, dict[str, str]] = {}
    for field, info in Settings.model_fields.items():
        if field in NOT_PARAMETERS:
            continue
        name, env = parameter_name(field), variable(field)
        assert name in parameters, f"{env} has no parameter {name}"
        parameter = parameters[name]
        assert parameter["Description"].startswith(f"{env},"), parameter["Description"]
        assert f"`{env}`" in readme
        default = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
        shown = ",".join(default) if isinstance(default, list) else default
        assert _same(parameter["Default"], "" if shown is None else shown), name
        expected_env[env] = {"Ref": name}
    for task_name, task in resources("AWS::ECS::TaskDefinition").items():
        (container,) = task["Properties"]["ContainerDefinitions"]
        given = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert {k: given.get(k) for k in expected_env} == expected_env, task_name
        for secret in ("TRACKER_NOTIFY_URLS", "TRACKER_SECRET_KEY", "TRACKER_SMTP_URL"):
            assert secret not in given, "a secret is never a plain setting"
    tasks = resources("AWS::ECS::TaskDefinition")
    alerter = tasks["AlerterTask"]["Properties"]
    secrets = alerter["ContainerDefinitions"][0]["Secrets"]["Fn::If"][1]
    assert secrets == [{"Name": "TRACKER_NOTIFY_URLS", "ValueFrom": {"Ref": "NotifyUrlsSecretArn"}}]
    key = {"Name": "TRACKER_SECRET_KEY", "ValueFrom": {"Ref": "SecretKeySecretArn"}}
    for logical in ("ApiTask", "NotifierTask"):
        (container,) = tasks[logical]["Properties"]["ContainerDefinitions"]
        assert key in container["Secrets"], logical
    (notifier,) = tasks["NotifierTask"]["Properties"]["ContainerDefinitions"]
    assert notifier["Command"] == ["tracker", "deliver"]


def test_cfn_lint_is_clean() -> None:
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(TEMPLATE)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_checkov_finds_nothing_unexplained() -> None:
    """Every failed check is fixed or skipped in place with a comment; the scan runs offline."""
    assert CHECKOV.exists(), "checkov is installed by `make install` (scripts/install-checkov.sh)"
    scan = subprocess.run(
        [*CHECKOV_ARGS, "-f", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(scan.stdout)
    summary = report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed and scan.returncode == 0, failed
    skipped = report["results"]["skipped_checks"]
    assert summary["passed"] > 40 and skipped and not summary["parsing_errors"], summary
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 40, check["check_id"]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = dynamodb_local.free_port()
    server = ThreadedMotoServer(port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="moto",
        aws_secret_access_key="moto",
    )


def test_the_stack_deploys_in_moto_and_the_tracker_runs_on_its_tables(
    moto_url: str, tmp_path: Path
) -> None:
    """The whole template created in moto's CloudFormation; its tables are what init-db makes
    (so `tracker init-db` creates none), and `tracker fetch --once` writes to them."""
    ec2, cfn, ddb = (_client(s, moto_url) for s in ("ec2", "cloudformation", "dynamodb"))
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [subnet["SubnetId"] for subnet in ec2.describe_subnets()["Subnets"]][:2]
    prefix = "moto"
    certificate = _client("acm", moto_url).request_certificate(DomainName="tracker.example")[
        "CertificateArn"
    ]
    cfn.create_stack(
        StackName="tracker",
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in {
                "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tracker:1",
                "VpcId": vpc,
                "SubnetIds": ",".join(subnets),
                "TablePrefix": prefix,
                "NotifyUrlsSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:n",
                "SecretKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
                "SmtpUrlSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
                "CertificateArn": certificate,
            }.items()
        ],
    )
    stack = cfn.describe_stacks(StackName="tracker")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    created = cfn.list_stack_resources(StackName="tracker")["StackResourceSummaries"]
    # Every resource, the conditional ones too (a certificate and a secret are given); by type,
    # as moto leaves some logical ids empty.
    assert sorted(r["ResourceType"] for r in created) == sorted(
        r["Type"] for r in template()["Resources"].values()
    )
    assert {r["ResourceStatus"] for r in created} == {"CREATE_COMPLETE"}

    for spec in TABLES:
        table = ddb.describe_table(TableName=f"{prefix}-{spec.name}")["Table"]
        wanted = spec.create_request(table["TableName"])
        assert table["KeySchema"] == wanted["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(
            wanted["AttributeDefinitions"], key=str
        )
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table.get("StreamSpecification") == wanted.get("StreamSpecification")
        assert sorted(index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])) == (
            sorted(index["IndexName"] for index in wanted.get("GlobalSecondaryIndexes", []))
        )

    env = os.environ | {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "moto",
        "AWS_SECRET_ACCESS_KEY": "moto",
        "TRACKER_TABLE_PREFIX": prefix,
        "TRACKER_SPOOL_DIR": str(tmp_path / "spool"),
    }
    init = subprocess.run([*TRACKER, "init-db"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    changes = re.findall(r"init-db: (.*)", init.stderr + init.stdout)
    # moto's CloudFormation drops TimeToLiveSpecification (it creates the table without TTL),
    # so init-db turns TTL on there; on AWS the template's TTL (checked above) makes it a no-op.
    assert not [c for c in changes if "created" in c or "stream" in c], changes
    ttl = {f"enabled TTL on {prefix}-{spec.name}.{TTL_ATTRIBUTE}" for spec in TABLES if spec.ttl}
    assert {c for c in changes if c.startswith("enabled TTL")} <= ttl, changes
    again = subprocess.run([*TRACKER, "init-db"], env=env, capture_output=True, text=True)
    assert "nothing to do" in again.stderr + again.stdout, again.stderr

    demo_port = dynamodb_local.free_port()
    demo = subprocess.Popen(
        [*TRACKER, "demo-exchange", "--port", str(demo_port), "--pairs", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        dynamodb_local.wait_for_port(demo_port)
        fetch = subprocess.run(
            [*TRACKER, "fetch", "--once"],
            env=env | {"TRACKER_BITFINEX_URL": f"http://127.0.0.1:{demo_port}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        demo.terminate()
        demo.wait(10)
    assert fetch.returncode == 0, fetch.stderr
    count = until(
        lambda: (n := ddb.scan(TableName=f"{prefix}-points", Select="COUNT")["Count"]) >= 20 and n,
        10,
        "20 points stored",
    )
    print(f"\nmoto: stack of {len(created)} resources; fetch --once stored {count} points")
