"""serverless.yml packages offline to valid CloudFormation, as a zip with SnapStart and as a
container image, and the Dockerfile lints clean."""

import base64
import hashlib
import itertools
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from qa.operations import metrics
from qasite.settings import env_bool
from tests.deploying import (
    BIN,
    IMAGE,
    ZIP_BYTES,
    as_list,
    cfn_lint,
    package,
    packaged,
    run_hook,
    run_package,
)
from tests.helpers import REPO


@pytest.fixture(scope="module")
def default_template(tmp_path_factory):
    return packaged(tmp_path_factory.mktemp("sls"))


def alias_arn(alias: str) -> dict:
    return {"Fn::Join": [":", [{"Fn::GetAtt": ["WebLambdaFunction", "Arn"]}, alias]]}


FUNCTION_ARN = {"Fn::GetAtt": ["WebLambdaFunction", "Arn"]}


def test_default_is_the_zip_on_python312_with_snapstart_behind_an_alias(default_template):
    """SnapStart applies to published versions only, never to $LATEST: so the version the deploy
    publishes (of exactly this zip: its hash) has an alias, and everything that invokes the
    function (the HTTP API and its permission, the keep-warm schedule) names the alias."""
    resources = default_template[1]["Resources"]
    function = resources["WebLambdaFunction"]["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "qasite.lambda_handler.handler"
    assert function["Architectures"] == ["x86_64"]
    assert "PackageType" not in function and function["Code"]["S3Key"].endswith(
        "/lambda-x86_64.zip"
    )
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    [version] = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Version"]
    code_hash = base64.b64encode(hashlib.sha256(ZIP_BYTES).digest()).decode()
    assert resources[version]["Properties"]["CodeSha256"] == code_hash
    [alias] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    target = alias_arn(alias["Name"])
    assert resources["HttpApiIntegrationWeb"]["Properties"]["IntegrationUri"] == target
    assert resources["WebLambdaPermissionHttpApi"]["Properties"]["FunctionName"] == target
    assert resources["WebEventsRuleSchedule1"]["Properties"]["Targets"][0]["Arn"] == target
    assert (
        resources["WebLambdaPermissionEventsRuleSchedule1"]["Properties"]["FunctionName"] == target
    )


def test_function_runs_the_baked_model_with_chosen_limits(default_template, image_template):
    for template in (default_template, image_template):
        function = template[1]["Resources"]["WebLambdaFunction"]["Properties"]
        # 1,024 MB: bert-tiny's process is ~300 MB, and SnapStart's cache and restores are
        # billed per GB (docs/operating.md, "Memory", is the command that measures it on AWS).
        assert function["Timeout"] < 30 and function["MemorySize"] == 1024
        # No reservation by default: a new account's quota may not allow one (issue 12, item 1).
        assert "ReservedConcurrentExecutions" not in function
        variables = function["Environment"]["Variables"]
        assert variables["QA_MODEL"] == "/var/task/model" and variables["HF_HUB_OFFLINE"] == "1"
        # Health names the model by what its bake recorded (model/source.json).
        assert "QA_MODEL_NAME" not in variables
        assert (
            "QA_FAST" not in variables
        )  # fast mode is the torch engine's; neither package has torch
        # Nothing signs with Django's key (no sessions): none is configured, no secret to keep.
        assert "DJANGO_SECRET_KEY" not in variables
        environment = json.dumps(function["Environment"])
        assert (
            "DJANGO_CSRF_TRUSTED_ORIGINS" in environment and "CloudFrontDistribution" in environment
        )


def role_statements(template: dict) -> list[dict]:
    return [
        statement
        for policy in template["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_role_may_write_logs_and_read_only_its_secret(default_template):
    """Besides its logs: ssm:GetParameter on exactly the origin secret's parameter, and
    kms:Decrypt only through SSM with the AWS-managed key (aws/ssm), which SecureString uses."""
    statements = role_statements(default_template[1])
    by_action = {action: s for s in statements for action in as_list(s["Action"])}
    others = {a for a in by_action if not a.startswith("logs:")}
    assert others == {"ssm:GetParameter", "kms:Decrypt"}
    ssm = by_action["ssm:GetParameter"]["Resource"]["Fn::Sub"]
    assert ssm.endswith(":parameter/qasite/prod/origin-secret") and "*" not in ssm
    kms = by_action["kms:Decrypt"]
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"
    }
    assert kms["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/aws/ssm"}


XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def xray_actions(template: dict) -> set[str]:
    return {
        action
        for statement in role_statements(template)
        for action in as_list(statement["Action"])
        if action.startswith("xray:")
    }


def test_tracing_is_off_by_default(default_template, image_template):
    for template in (default_template[1], image_template[1]):
        function = template["Resources"]["WebLambdaFunction"]["Properties"]
        assert "TracingConfig" not in function
        assert "QA_TRACING" not in function["Environment"]["Variables"]
        assert xray_actions(template) == set()


@pytest.fixture(scope="module")
def tracing_template(tmp_path_factory):
    return packaged(tmp_path_factory.mktemp("sls-tracing"), "tracing=true")


def test_tracing_traces_the_function_and_its_app_with_the_x_ray_sdk_zip(
    tracing_template, monkeypatch
):
    """tracing=true: Lambda's active tracing, the role may send segments (X-Ray's actions take
    no resource), the app adds its own (QA_TRACING, as settings reads it), and the zip deployed
    is the one built with the X-Ray SDK (`make zip TRACING=1`)."""
    template = tracing_template[1]
    function = template["Resources"]["WebLambdaFunction"]["Properties"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    monkeypatch.setenv("QA_TRACING", function["Environment"]["Variables"]["QA_TRACING"])
    assert env_bool("QA_TRACING") is True
    [xray] = [s for s in role_statements(template) if set(as_list(s["Action"])) & XRAY_ACTIONS]
    assert set(xray["Action"]) == XRAY_ACTIONS == xray_actions(template)
    assert xray["Resource"] == ["*"] and "Condition" not in xray
    assert function["Code"]["S3Key"].endswith("/lambda-x86_64-tracing.zip")
    # Nothing else changes: the version still publishes that zip, behind the SnapStart alias.
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def test_tracing_with_the_image(tmp_path):
    function = json.loads(package(tmp_path, "package=image", "tracing=true").read_text())[
        "Resources"
    ]["WebLambdaFunction"]["Properties"]
    assert function["TracingConfig"] == {"Mode": "Active"} and "ImageUri" in function["Code"]
    assert function["Environment"]["Variables"]["QA_TRACING"] == "true"


def distribution(template: dict) -> dict:
    return template["Resources"]["CloudFrontDistribution"]["Properties"]["DistributionConfig"]


def test_cloudfront_compresses_the_app_without_caching_it(default_template):
    """CloudFront compresses only under a cache policy with gzip and brotli on, which it refuses
    when every TTL is 0: so our own policy, MaxTTL 1 s, and the app's Cache-Control: no-store."""
    resources = default_template[1]["Resources"]
    config = distribution(default_template[1])
    api, static = config["CacheBehaviors"]
    for behaviour in (config["DefaultCacheBehavior"], api):
        assert behaviour["CachePolicyId"] == {"Ref": "AppCachePolicy"}
        assert behaviour["OriginRequestPolicyId"] == {"Ref": "OriginRequestPolicy"}
        assert behaviour["Compress"] is True
    policy = resources["AppCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert (policy["MinTTL"], policy["DefaultTTL"]) == (0, 0) and policy["MaxTTL"] >= 1
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["EnableAcceptEncodingGzip"] is True and key["EnableAcceptEncodingBrotli"] is True
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    # Static files: the managed CachingOptimized policy (compresses, caches).
    assert static["PathPattern"] == "static/*"
    assert static["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    # What the app reads still reaches it: the origin request policy forwards it.
    origin = resources["OriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
    headers = origin["HeadersConfig"]
    # API Gateway needs its own Host; the rate limit needs the viewer's address from CloudFront.
    assert headers["HeaderBehavior"] == "whitelist" and "Host" not in headers["Headers"]
    assert {"Accept", "Content-Type", "CloudFront-Viewer-Address"} <= set(headers["Headers"])
    assert origin["CookiesConfig"] == {"CookieBehavior": "whitelist", "Cookies": ["csrftoken"]}
    assert origin["QueryStringsConfig"] == {"QueryStringBehavior": "all"}


def test_cloudfront_redirects_pages_to_https_and_refuses_plain_http_on_the_api(default_template):
    """A redirect turns a POST into a GET and loses its body: /api/* is HTTPS only (CloudFront
    answers plain HTTP with a 403), pages and static files redirect."""
    config = distribution(default_template[1])
    api, static = config["CacheBehaviors"]
    assert api["PathPattern"] == "api/*" and api["ViewerProtocolPolicy"] == "https-only"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    assert static["ViewerProtocolPolicy"] == "redirect-to-https"


def test_cloudfront_never_caches_a_5xx(default_template):
    errors = distribution(default_template[1])["CustomErrorResponses"]
    assert errors == [{"ErrorCode": code, "ErrorCachingMinTTL": 0} for code in (500, 502, 503, 504)]


def test_cloudfront_defaults_ipv6_its_own_domain_no_web_acl(default_template):
    config = distribution(default_template[1])
    assert config["IPV6Enabled"] is True and config["HttpVersion"] == "http2and3"
    assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}
    assert not {"Aliases", "WebACLId"} & set(config)
    # The app takes GET, HEAD, OPTIONS and POST; CloudFront's only set with POST has them all.
    assert set(config["DefaultCacheBehavior"]["AllowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "PATCH",
        "POST",
        "DELETE",
    }
    outputs = default_template[1]["Outputs"]
    assert {"CloudFrontUrl", "CloudFrontDistributionId", "FunctionName"} <= set(outputs)


def test_http_api_throttles_logs_json_access_lines_without_query_strings(default_template):
    resources = default_template[1]["Resources"]
    stage = resources["HttpApiStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": 200,
        "ThrottlingBurstLimit": 400,
    }
    line = json.loads(stage["AccessLogSettings"]["Format"])
    assert line["path"] == "$context.path" and line["status"] == "$context.status"
    # No query string, header, address or body of the request.
    assert not [v for v in line.values() if re.search(r"query|header|sourceIp|body|userAgent", v)]
    for group in ("HttpApiLogGroup", "WebLogGroup"):
        assert resources[group]["Properties"]["RetentionInDays"] == 14
        # `serverless remove` keeps the logs.
        assert resources[group]["DeletionPolicy"] == resources[group]["UpdateReplacePolicy"]
        assert resources[group]["DeletionPolicy"] == "Retain"
    assert resources["WebEventsRuleSchedule1"]["Properties"]["State"] == "DISABLED"


def test_a_daily_ping_keeps_the_snapstart_version_active(default_template, tmp_path):
    """Lambda makes a SnapStart version Inactive after 14 days without an invocation, and it then
    answers SnapStartNotReadyException: a ping a day through the alias keeps it active, unless
    keepActive=false."""
    resources = default_template[1]["Resources"]
    daily = resources["WebEventsRuleSchedule2"]["Properties"]
    assert daily["ScheduleExpression"] == "rate(1 day)" and daily["State"] == "ENABLED"
    [alias] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert daily["Targets"][0]["Arn"] == alias_arn(alias["Name"])
    off = json.loads(package(tmp_path, "keepActive=false").read_text())["Resources"]
    assert off["WebEventsRuleSchedule2"]["Properties"]["State"] == "DISABLED"


def test_old_versions_are_pruned_after_each_deploy_keeping_the_rollback_targets():
    """serverless-prune-plugin (installed from package.json) deletes all but the newest
    keepVersions versions after each deploy; it never deletes a version an alias names."""
    config = yaml.safe_load((REPO / "serverless.yml").read_text())
    assert "serverless-prune-plugin" in config["plugins"]
    assert config["custom"]["prune"] == {"automatic": True, "number": "${param:keepVersions}"}
    assert config["params"]["default"]["keepVersions"] == 3
    package_json = json.loads((REPO / "package.json").read_text())
    assert re.fullmatch(
        r"\d+\.\d+\.\d+", package_json["devDependencies"]["serverless-prune-plugin"]
    )


def test_no_alarms_without_a_topic(default_template):
    resources = default_template[1]["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert "Conditions" not in default_template[1]  # settled at package time


def test_keep_warm_snapstart_and_the_model_name_are_parameters(tmp_path):
    path = package(
        tmp_path, "keepWarm=true", "snapStart=false", "reservedConcurrency=5", "modelName=my/model"
    )
    cfn_lint(path)
    resources = json.loads(path.read_text())["Resources"]
    assert resources["WebEventsRuleSchedule1"]["Properties"]["State"] == "ENABLED"
    function = resources["WebLambdaFunction"]["Properties"]
    assert "SnapStart" not in function and function["Runtime"] == "python3.12"
    assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert resources["HttpApiIntegrationWeb"]["Properties"]["IntegrationUri"] == FUNCTION_ARN
    assert function["ReservedConcurrentExecutions"] == 5
    assert function["Environment"]["Variables"]["QA_MODEL_NAME"] == "my/model"


def test_reserved_concurrency_zero_is_none(tmp_path):
    """0 would stop the function altogether: the parameter's 0, like its empty default, means no
    reservation (osls takes no empty value on the command line)."""
    function = json.loads(package(tmp_path, "reservedConcurrency=0").read_text())["Resources"][
        "WebLambdaFunction"
    ]["Properties"]
    assert "ReservedConcurrentExecutions" not in function


DOMAIN = "qa.example.com"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/qasite-prod/a1b2c3d4"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:qasite-alarms"


@pytest.fixture(scope="module")
def everything_template(tmp_path_factory):
    """Every optional feature on: a custom domain, a web ACL, alarms, arm64, a reservation."""
    return packaged(
        tmp_path_factory.mktemp("sls-all"),
        f"domainName={DOMAIN}",
        f"certificateArn={CERTIFICATE}",
        f"webAclArn={WEB_ACL}",
        f"alarmTopicArn={TOPIC}",
        "architecture=arm64",
        "reservedConcurrency=10",
        "timeout=20",
    )


# Every combination of the parameters that decide which resources a template holds: how the
# function is packaged (the zip with SnapStart, with a gradual deployment or without; the zip
# without SnapStart; the image) and each optional part on or off: 4 x 2^4 = 64 templates. The
# parameters that change only a resource's properties take their other value where the parity
# of some bits of the template's number (2 to 3 of its 6: the packaging's 2, then the parts') is
# odd: in half the templates of each packaging, and never in step with one packaging bit or part.
PACKAGINGS = [
    [],
    ["deploymentPreference=Canary10Percent5Minutes"],
    ["snapStart=false"],
    ["package=image"],
]
OPTIONAL_PARTS = [
    ["tracing=true"],
    [f"alarmTopicArn={TOPIC}"],
    [f"domainName={DOMAIN}", f"certificateArn={CERTIFICATE}"],
    [f"webAclArn={WEB_ACL}"],
]
PROPERTIES = {  # the parameter, and the bits of the template's number whose parity sets it
    "architecture=arm64": 0b000011,
    "keepWarm=true": 0b000110,
    "reservedConcurrency=10": 0b011100,
    "keepActive=false": 0b101001,
}


def parameter_combinations() -> list[list[str]]:
    """The --param lists of the 64 templates above, the default (no parameter) first."""
    combinations = []
    for packaging in PACKAGINGS:
        for chosen in itertools.product([False, True], repeat=len(OPTIONAL_PARTS)):
            number = len(combinations)
            params = packaging + [
                p for on, part in zip(chosen, OPTIONAL_PARTS, strict=True) if on for p in part
            ]
            params += [p for p, bits in PROPERTIES.items() if (number & bits).bit_count() % 2]
            combinations.append(params)
    return combinations


def test_every_combination_of_the_optional_parts_passes_cfn_lint(tmp_path):
    def package_one(numbered: tuple[int, list[str]]):
        number, params = numbered
        (tmp_path / str(number)).mkdir()
        return package(tmp_path / str(number), *params)

    combinations = parameter_combinations()
    assert len(combinations) == 64 and combinations[0] == []
    # Each property parameter in half the templates of each packaging and of each part's.
    for value in PROPERTIES:
        having = [value in params for params in combinations]
        assert [sum(having[block : block + 16]) for block in range(0, 64, 16)] == [8, 8, 8, 8]
        for part in OPTIONAL_PARTS:
            with_part = [
                h for h, params in zip(having, combinations, strict=True) if part[0] in params
            ]
            assert sum(with_part) == 16, (value, part)
    with ThreadPoolExecutor(max_workers=2) as pool:  # serverless spends most of 5 s starting up
        templates = list(pool.map(package_one, enumerate(combinations)))
    cfn_lint(*templates)


def test_the_image_with_every_optional_part_has_them_all(tmp_path):
    """The other package with every optional resource: what the zip's fixtures above do not
    cover."""
    path = package(
        tmp_path,
        "package=image",
        f"domainName={DOMAIN}",
        f"certificateArn={CERTIFICATE}",
        f"webAclArn={WEB_ACL}",
        f"alarmTopicArn={TOPIC}",
        "tracing=true",
        "keepActive=false",
    )
    resources = json.loads(path.read_text())["Resources"]
    assert "SecurityHeadersPolicy" in resources and "ModelLoadFailuresAlarm" in resources


def test_custom_domain_with_tls12_and_csrf_trusted(everything_template):
    config = distribution(everything_template[1])
    assert config["Aliases"] == [DOMAIN]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CERTIFICATE,
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2025",
    }
    variables = everything_template[1]["Resources"]["WebLambdaFunction"]["Properties"][
        "Environment"
    ]["Variables"]
    origins = variables["DJANGO_CSRF_TRUSTED_ORIGINS"]["Fn::Join"][1]
    assert origins[0] == "https://" and origins[-1] == f",https://{DOMAIN}"


def test_web_acl_is_the_distributions(everything_template):
    assert distribution(everything_template[1])["WebACLId"] == WEB_ACL


def test_arm64_zip_and_reservation(everything_template):
    function = everything_template[1]["Resources"]["WebLambdaFunction"]["Properties"]
    assert function["Architectures"] == ["arm64"]
    assert function["Code"]["S3Key"].endswith("/lambda-arm64.zip")
    assert function["ReservedConcurrentExecutions"] == 10


def test_image_for_arm64(tmp_path):
    function = json.loads(package(tmp_path, "package=image", "architecture=arm64").read_text())[
        "Resources"
    ]["WebLambdaFunction"]["Properties"]
    assert function["Architectures"] == ["arm64"] and function["Code"] == {"ImageUri": IMAGE}


def test_alarms_notify_the_topic(everything_template):
    resources = everything_template[1]["Resources"]
    alarms = {
        id: r["Properties"] for id, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) == {
        "FunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
        "FunctionDurationAlarm",
        "HttpApi5xxAlarm",
        "AccountConcurrencyAlarm",
        "ModelLoadFailuresAlarm",
        "ServerErrorsAlarm",
        "DirectRequestsAlarm",
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [TOPIC]
        assert alarm["TreatMissingData"] == "notBreaching"
    errors = alarms["FunctionErrorsAlarm"]
    assert errors["MetricName"] == "Errors" and errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "WebLambdaFunction"}}]
    duration = alarms["FunctionDurationAlarm"]
    # p99 at 80% of the timeout (20 s here), in milliseconds.
    assert duration["ExtendedStatistic"] == "p99" and duration["Threshold"] == 16_000
    metrics = {m["Id"]: m for m in alarms["HttpApi5xxAlarm"]["Metrics"]}
    assert metrics["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "Count"
    for metric in ("errors", "requests"):
        assert metrics[metric]["MetricStat"]["Metric"]["Dimensions"] == [
            {"Name": "ApiId", "Value": {"Ref": "HttpApi"}}
        ]
    assert "100 * errors / requests" in metrics["rate"]["Expression"]


def metric_math(alarm: dict) -> dict[str, dict]:
    return {metric["Id"]: metric for metric in alarm["Metrics"]}


def test_the_throttle_alarm_wants_a_share_not_one_throttle(everything_template):
    """A new account runs 10 instances at most: a burst throttles a few invocations and is no
    incident. The alarm: over 5% of attempts throttled in 5 minutes, with at least 10."""
    alarm = everything_template[1]["Resources"]["FunctionThrottlesAlarm"]["Properties"]
    metrics = metric_math(alarm)
    for name, metric in [("throttles", "Throttles"), ("invocations", "Invocations")]:
        stat = metrics[name]["MetricStat"]
        assert (
            stat["Metric"]["MetricName"] == metric and stat["Metric"]["Namespace"] == "AWS/Lambda"
        )
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "FunctionName", "Value": {"Ref": "WebLambdaFunction"}}
        ]
        assert stat["Stat"] == "Sum"
    [result] = [m for m in metrics.values() if m["ReturnData"]]
    assert result["Expression"] == (
        "IF(throttles >= 10, 100 * throttles / (throttles + invocations), 0)"
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5, "GreaterThanThreshold")


def test_the_concurrency_alarm_compares_the_account_s_usage_with_its_quota(everything_template):
    alarm = everything_template[1]["Resources"]["AccountConcurrencyAlarm"]["Properties"]
    metrics = metric_math(alarm)
    usage = metrics["usage"]["MetricStat"]
    assert usage["Metric"]["Namespace"] == "AWS/Usage" and usage["Stat"] == "Maximum"
    assert {d["Name"]: d["Value"] for d in usage["Metric"]["Dimensions"]} == {
        "Service": "Lambda",
        "Type": "Resource",
        "Resource": "ConcurrentExecutions",
        "Class": "None",
    }
    [result] = [m for m in metrics.values() if m["ReturnData"]]
    assert result["Expression"] == "100 * usage / SERVICE_QUOTA(usage)"
    assert alarm["Threshold"] == 80


def test_the_app_s_own_metrics_have_alarms_under_the_names_it_publishes(everything_template):
    """The handler answers every failure itself, so Lambda's Errors sees none of a model that
    fails to load: the app's ModelLoadFailures and ServerErrors do, in the namespace and with
    the dimension qa/operations/metrics.py publishes them with (and the 403s of requests without
    CloudFront's secret, with its status dimension)."""
    resources = everything_template[1]["Resources"]
    service = [{"Name": "service", "Value": metrics.SERVICE}]
    for name, metric, threshold, dimensions in [
        ("ModelLoadFailuresAlarm", "ModelLoadFailures", 1, service),
        ("ServerErrorsAlarm", "ServerErrors", 3, service),
        (
            "DirectRequestsAlarm",
            "ClientErrors",
            300,
            [*service, {"Name": "status", "Value": "403"}],
        ),
    ]:
        alarm = resources[name]["Properties"]
        assert alarm["Namespace"] == metrics.NAMESPACE and alarm["MetricName"] == metric
        assert alarm["Dimensions"] == dimensions and alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == threshold
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    source = (REPO / "qa" / "services.py").read_text()
    source += (REPO / "qa" / "operations" / "metrics.py").read_text()
    assert '"ModelLoadFailures"' in source and '"ServerErrors"' in source
    assert 'name="status"' in source


def test_cloudfront_s_own_answers_carry_the_app_s_security_headers(default_template):
    """CloudFront's 403 (plain HTTP on /api/), WAF's 429 and its own 5xx come from no app: a
    response headers policy adds the app's headers (settings), without overriding the app's."""
    from django.conf import settings

    resources = default_template[1]["Resources"]
    config = distribution(default_template[1])
    for behaviour in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}
    headers = resources["SecurityHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"][
        "SecurityHeadersConfig"
    ]
    assert all(header["Override"] is False for header in headers.values())
    csp = "; ".join(f"{d} {' '.join(s)}" for d, s in settings.SECURE_CSP.items())
    assert headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] == csp
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == settings.SECURE_REFERRER_POLICY
    assert headers["FrameOptions"]["FrameOption"] == settings.X_FRAME_OPTIONS
    hsts = headers["StrictTransportSecurity"]
    assert hsts["AccessControlMaxAgeSec"] == 31_536_000
    assert hsts["IncludeSubdomains"] is True and hsts["Preload"] is True


@pytest.mark.parametrize(
    "params, message",
    [
        (["package=image", "snapStart=true"], "snapStart=true needs package=zip"),
        (
            ["package=image", "imageUri=123456789012.dkr.ecr.eu-west-1.amazonaws.com/qasite:v1"],
            "deploy by digest",
        ),
        ([f"domainName={DOMAIN}"], "domainName and certificateArn go together"),
        ([f"certificateArn={CERTIFICATE}"], "domainName and certificateArn go together"),
        (
            [
                f"domainName={DOMAIN}",
                "certificateArn=" + CERTIFICATE.replace("us-east-1", "eu-west-1"),
            ],
            "in us-east-1",
        ),
        ([f"webAclArn={WEB_ACL.replace('global', 'regional')}"], "CLOUDFRONT web ACL"),
        ([f"alarmTopicArn={TOPIC.replace('eu-west-1', 'us-east-1')}"], "the stack's region"),
        (["reservedConcurrency=-1"], "expected a whole number"),
        (["package=lambda"], "expected zip or image"),
        (["tracing=Active"], "tracing=Active: expected true or false"),
        (["tracing=yes"], "provider.tracing.lambda"),
        (["keepVersions=0"], "keepVersions=0: expected a whole number, 1 or more"),
        (
            ["deploymentPreference=Canary50Percent"],
            "deploymentPreference=Canary50Percent: expected",
        ),
        (
            ["deploymentPreference=AllAtOnce", "snapStart=false"],
            "deploymentPreference shifts the alias SnapStart publishes",
        ),
        (
            ["deploymentPreference=AllAtOnce", "package=image"],
            "deploymentPreference shifts the alias SnapStart publishes",
        ),
        (["terminationProtection=yes"], "terminationProtection=yes: expected true, false"),
    ],
)
def test_a_combination_aws_would_refuse_is_refused_at_package_time(tmp_path, params, message):
    result = run_package(tmp_path, *params)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize("region", ["ap-east-2", "ap-southeast-6"])
def test_snapstart_is_refused_where_lambda_has_none(tmp_path, region):
    result = run_package(tmp_path, region=region)
    assert result.returncode != 0
    assert f"AWS Lambda offers no SnapStart in {region}" in result.stdout + result.stderr
    assert '--param="snapStart=false"' in result.stdout + result.stderr


def test_without_snapstart_such_a_region_packages(tmp_path):
    assert run_package(tmp_path, "snapStart=false", region="ap-east-2").returncode == 0


@pytest.mark.parametrize(
    "preference, alarms",
    [("Canary10Percent5Minutes", True), ("Linear10PercentEvery1Minute", False)],
)
def test_a_gradual_deployment_shifts_the_alias_and_rolls_back_on_the_alarms(
    tmp_path, preference, alarms
):
    """deploymentPreference: what AWS SAM's DeploymentPreference generates. CloudFormation hands
    the alias's move to CodeDeploy, which shifts traffic by the predefined configuration and
    moves it back on a failure or, with alarms, when one fires; its role carries the boundary."""
    params = [f"deploymentPreference={preference}"] + ([f"alarmTopicArn={TOPIC}"] if alarms else [])
    path = package(tmp_path, *params)
    cfn_lint(path)
    resources = json.loads(path.read_text())["Resources"]
    [alias] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert alias["UpdatePolicy"] == {
        "CodeDeployLambdaAliasUpdate": {
            "ApplicationName": {"Ref": "CodeDeployApplication"},
            "DeploymentGroupName": {"Ref": "CodeDeployDeploymentGroup"},
        }
    }
    assert resources["CodeDeployApplication"]["Properties"] == {"ComputePlatform": "Lambda"}
    group = resources["CodeDeployDeploymentGroup"]["Properties"]
    assert group["DeploymentConfigName"] == f"CodeDeployDefault.Lambda{preference}"
    assert group["DeploymentStyle"]["DeploymentOption"] == "WITH_TRAFFIC_CONTROL"
    rollback = group["AutoRollbackConfiguration"]
    assert rollback["Enabled"] is True and "DEPLOYMENT_FAILURE" in rollback["Events"]
    if alarms:
        assert "DEPLOYMENT_STOP_ON_ALARM" in rollback["Events"]
        assert [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]] == [
            "FunctionErrorsAlarm",
            "ModelLoadFailuresAlarm",
            "ServerErrorsAlarm",
            "HttpApi5xxAlarm",
        ]
    else:
        assert "AlarmConfiguration" not in group
    role = resources["CodeDeployServiceRole"]["Properties"]
    assert (
        role["PermissionsBoundary"]
        == (resources["IamRoleLambdaExecution"]["Properties"]["PermissionsBoundary"])
    )
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["codedeploy.amazonaws.com"]}


def test_the_alias_moves_at_once_by_default(default_template):
    resources = default_template[1]["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::CodeDeploy::")]
    [alias] = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert "UpdatePolicy" not in alias


# --- Deploy-time hooks, against a stubbed AWS ---

SECRETS = {
    "Parameters": [
        {"Name": "/qasite/prod/origin-secret", "Type": "SecureString"},
        {"Name": "/qasite/prod/origin-secret-cloudfront", "Type": "String"},
    ],
    "InvalidParameters": [],
}


def test_a_deploy_starts_when_both_secret_parameters_exist():
    result = run_hook("before:deploy:deploy", responses={"SSM.getParameters": SECRETS})
    assert result["ok"], result
    [[service, method, request]] = result["calls"]
    assert (service, method) == ("SSM", "getParameters")
    # Names only: no WithDecryption, so the SecureString's value is never even decrypted.
    assert request == {
        "Names": ["/qasite/prod/origin-secret", "/qasite/prod/origin-secret-cloudfront"]
    }


@pytest.mark.parametrize(
    "found, missing, wanted",
    [
        ([], ["/qasite/prod/origin-secret", "/qasite/prod/origin-secret-cloudfront"], 2),
        (SECRETS["Parameters"][:1], ["/qasite/prod/origin-secret-cloudfront"], 1),
        (SECRETS["Parameters"][1:], ["/qasite/prod/origin-secret"], 1),
    ],
)
def test_a_missing_parameter_stops_the_deploy_with_the_command_that_creates_it(
    found, missing, wanted
):
    result = run_hook(
        "before:deploy:deploy",
        responses={"SSM.getParameters": {"Parameters": found, "InvalidParameters": missing}},
    )
    assert not result["ok"]
    commands = re.findall(r"aws ssm put-parameter .*", result["error"])
    assert len(commands) == wanted
    for name in missing:
        kind = "String" if name.endswith("-cloudfront") else "SecureString"
        assert (
            f"aws ssm put-parameter --region eu-west-1 --name {name} --type {kind} "
            '--value "$SECRET"' in commands
        )


def test_a_parameter_of_the_wrong_type_stops_the_deploy():
    swapped = [
        {"Name": "/qasite/prod/origin-secret", "Type": "String"},
        {"Name": "/qasite/prod/origin-secret-cloudfront", "Type": "String"},
    ]
    result = run_hook(
        "before:deploy:deploy", responses={"SSM.getParameters": {"Parameters": swapped}}
    )
    assert not result["ok"]
    assert (
        "/qasite/prod/origin-secret is a String; the stack reads it as a SecureString"
        in (result["error"])
    )


def test_a_pinned_cloudfront_parameter_version_is_checked_as_given():
    result = run_hook(
        "before:deploy:deploy",
        "cloudFrontSecretParameter=/qasite/prod/origin-secret-cloudfront:7",
        responses={"SSM.getParameters": SECRETS},
    )
    assert result["ok"], result
    assert result["calls"][0][2]["Names"][1] == "/qasite/prod/origin-secret-cloudfront:7"


def test_an_unreachable_aws_fails_the_check_rather_than_deploying():
    result = run_hook(
        "before:deploy:deploy", responses={"SSM.getParameters": {"error": "connect ECONNREFUSED"}}
    )
    assert not result["ok"] and "ECONNREFUSED" in result["error"]


@pytest.mark.parametrize(
    "stage, params, enabled",
    [
        ("prod", [], True),
        ("dev", [], False),
        ("dev", ["terminationProtection=true"], True),
        ("prod", ["terminationProtection=false"], False),
    ],
)
def test_termination_protection_after_each_deploy(stage, params, enabled):
    result = run_hook("after:deploy:deploy", *params, stage=stage)
    assert result["ok"], result
    assert result["calls"] == [
        [
            "CloudFormation",
            "updateTerminationProtection",
            {"StackName": f"qasite-{stage}", "EnableTerminationProtection": enabled},
        ]
    ]


def test_the_origin_secret_is_read_by_name_and_cloudfront_resolves_its_copy(default_template):
    """The function's environment holds the SecureString parameter's name only (its value is read
    at init, with the role); CloudFront needs the value itself, which CloudFormation resolves
    from an SSM String parameter at deploy time (no ssm-secure reference is allowed there)."""
    resources = default_template[1]["Resources"]
    [origin] = distribution(default_template[1])["Origins"]
    assert origin["OriginCustomHeaders"] == [
        {
            "HeaderName": "X-Origin-Verify",
            "HeaderValue": "{{resolve:ssm:/qasite/prod/origin-secret-cloudfront}}",
        }
    ]
    variables = resources["WebLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["QA_PROXY_SECRET_PARAMETER"] == "/qasite/prod/origin-secret"
    assert "QA_PROXY_SECRET" not in variables and "{{resolve" not in json.dumps(variables)
    assert variables["QA_CLIENT_IP_HEADER"] == "CloudFront-Viewer-Address"
    assert variables["QA_THROTTLE_RATE"] == "60/min"


def test_no_secret_in_the_files():
    text = (REPO / "serverless.yml").read_text()
    assert "{{resolve:ssm:${param:cloudFrontSecretParameter}}}" in text
    assert text.count("{{resolve") == 1


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(BIN / "hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_serves_the_torch_free_tree():
    """torch and transformers bake the model in a stage of their own; the image is the Lambda base
    image with the runtime tree that build-runtime.sh and assemble.sh make, as the zip is."""
    text = (REPO / "Dockerfile").read_text()
    stages = text.split("\nFROM ")[1:]
    bake, build, server, final = stages
    assert bake.startswith("${BASE_IMAGE} AS bake")
    assert "requirements/build.txt" in bake and "bake_model" in bake
    assert "requirements/build.txt" not in build + server + final
    assert "docker/build-runtime.sh" in build and "docker/assemble.sh" in build
    assert "COPY --from=bake /model " in build
    assert server.startswith("${BASE_IMAGE} AS server\n")
    assert final.startswith("${BASE_IMAGE}\n")
    assert [line for line in final.splitlines() if line.startswith("COPY")] == [
        "COPY --from=build /var/task /var/task"
    ]


def test_the_base_image_is_pinned_by_digest_and_the_model_by_revision():
    text = (REPO / "Dockerfile").read_text()
    [base] = re.findall(r"^ARG BASE_IMAGE=(.*)$", text, re.MULTILINE)
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.12@sha256:[0-9a-f]{64}", base)
    froms = re.findall(r"^FROM .*", text, re.MULTILINE)
    assert all(line.startswith("FROM ${BASE_IMAGE}") for line in froms)
    # The model: none named here (empty build arguments), so bake_model bakes the settings'
    # production model at its pinned commit in float32, as `make zip` does; QA_QUANTIZE=int8
    # asks bake_model for --quantize int8.
    assert re.findall(r"^ARG (QA_\w*)=(.*)$", text, re.MULTILINE) == [
        ("QA_MODEL", ""),
        ("QA_MODEL_REVISION", ""),
        ("QA_QUANTIZE", ""),
    ]
    bake_line = "RUN python3.12 manage.py bake_model --output /model "
    assert bake_line + '${QA_QUANTIZE:+--quantize "$QA_QUANTIZE"}\n' in text
    # Every file the image's stages copy is in the build context .dockerignore lets through.
    allowed = (REPO / ".dockerignore").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert f"!{source}" in allowed or f"!{source.split('/')[0]}/" in allowed, source


def test_the_production_model_and_its_commit_are_declared_once():
    """qasite/settings.py names them; the code, the builds and the deploy take them from there."""
    from django.conf import settings

    assert re.fullmatch(r"[0-9a-f]{40}", settings.PRODUCTION_MODEL_REVISION)
    builds = ["Dockerfile", "Makefile", "serverless.yml", ".ci/run", "docker", "deploy", "qa"]
    paths = [REPO / name for name in builds]
    files = [path for path in paths if path.is_file()] + [
        file for path in paths if path.is_dir() for file in path.rglob("*") if file.is_file()
    ]
    assert len(files) > 20
    for file in files:
        if file.suffix in {".pyc", ".png", ".ico", ".woff2"}:
            continue
        text = file.read_text(encoding="utf-8")
        assert settings.PRODUCTION_MODEL not in text, file
        assert settings.PRODUCTION_MODEL_REVISION not in text, file


def test_the_image_is_built_for_either_cpu():
    """The tree's wheels follow the build stage's CPU (docker buildx --platform linux/arm64 or
    linux/amd64): build-runtime.sh and assemble.sh are told it."""
    text = (REPO / "Dockerfile").read_text()
    assert text.count('ARCH="$(uname -m)" ') == 2
    assert 'ARCH="$(uname -m)" PYTHON=python3.12 docker/assemble.sh' in text
    # and whether it adds the X-Ray SDK (--build-arg TRACING=1; off by default).
    assert "ARG TRACING=0" in text
    assert 'ARCH="$(uname -m)" TRACING="${TRACING}" PYTHON=python3.12 \\' in text
    assert "--provenance=false --sbom=false" in text
