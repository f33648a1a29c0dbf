"""serverless.yml packages offline to valid CloudFormation, and the Dockerfile lints clean."""

import json
import subprocess

import pytest

from tests.deploying import BIN, IMAGE, REPO, cfn_lint, package


@pytest.fixture(scope="module")
def default_template(tmp_path_factory):
    path = package(tmp_path_factory.mktemp("sls"))
    return path, json.loads(path.read_text())


def test_default_template_passes_cfn_lint(default_template):
    cfn_lint(default_template[0])


def test_function_runs_the_image_by_digest_with_chosen_limits(default_template):
    function = default_template[1]["Resources"]["WebLambdaFunction"]["Properties"]
    assert function["PackageType"] == "Image"
    assert function["Code"] == {"ImageUri": IMAGE}
    assert function["Timeout"] < 30 and function["MemorySize"] == 2048
    assert function["ReservedConcurrentExecutions"] == 20
    assert "SnapStart" not in function
    assert function["Environment"]["Variables"]["QA_FAST"] == "0"
    environment = json.dumps(function["Environment"])
    assert "{{resolve:ssm:/qasite/prod/django-secret-key}}" in environment
    assert "DJANGO_CSRF_TRUSTED_ORIGINS" in environment and "CloudFrontDistribution" in environment


def test_role_may_only_write_logs(default_template):
    resources = default_template[1]["Resources"]
    statements = [
        statement
        for policy in resources["IamRoleLambdaExecution"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    actions = {action for statement in statements for action in statement["Action"]}
    assert actions and all(action.startswith("logs:") for action in actions)


def test_cloudfront_fronts_the_http_api_without_caching_the_app(default_template):
    resources = default_template[1]["Resources"]
    config = resources["CloudFrontDistribution"]["Properties"]["DistributionConfig"]
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    assert behaviour["OriginRequestPolicyId"] == {"Ref": "OriginRequestPolicy"}
    policy = resources["OriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
    headers = policy["HeadersConfig"]
    # API Gateway needs its own Host; the rate limit needs the viewer's address from CloudFront.
    assert headers["HeaderBehavior"] == "whitelist" and "Host" not in headers["Headers"]
    assert "CloudFront-Viewer-Address" in headers["Headers"]
    assert policy["CookiesConfig"] == {"CookieBehavior": "whitelist", "Cookies": ["csrftoken"]}
    assert behaviour["Compress"] is True
    assert "HttpApi" in json.dumps(config["Origins"])
    assert "CloudFrontUrl" in default_template[1]["Outputs"]
    stage = resources["HttpApiStage"]["Properties"]["DefaultRouteSettings"]
    assert stage == {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100}
    assert resources["WebLogGroup"]["Properties"]["RetentionInDays"] == 14
    assert resources["WebEventsRuleSchedule1"]["Properties"]["State"] == "DISABLED"


def test_keep_warm_snapstart_and_fast_mode_are_parameters(tmp_path):
    path = package(
        tmp_path, "keepWarm=true", "snapStart=true", "reservedConcurrency=5", "fastMode=1"
    )
    cfn_lint(path)
    resources = json.loads(path.read_text())["Resources"]
    assert resources["WebEventsRuleSchedule1"]["Properties"]["State"] == "ENABLED"
    function = resources["WebLambdaFunction"]["Properties"]
    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert function["ReservedConcurrentExecutions"] == 5
    assert function["Environment"]["Variables"]["QA_FAST"] == "1"


def test_rate_limit_counts_the_cloudfront_viewer_only_with_cloudfronts_secret(default_template):
    """CloudFront sends the secret to the origin; the function believes CloudFront-Viewer-Address
    only on requests that carry it (qa/throttling.py). The secret itself stays in SSM."""
    secret = "{{resolve:ssm:/qasite/prod/origin-secret}}"
    resources = default_template[1]["Resources"]
    [origin] = resources["CloudFrontDistribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert origin["OriginCustomHeaders"] == [{"HeaderName": "X-Origin-Verify", "HeaderValue": secret}]
    variables = resources["WebLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["QA_PROXY_SECRET"] == secret
    assert variables["QA_CLIENT_IP_HEADER"] == "CloudFront-Viewer-Address"
    assert variables["QA_THROTTLE_RATE"] == "60/min"


def test_no_secret_in_the_files():
    text = (REPO / "serverless.yml").read_text()
    assert "DJANGO_SECRET_KEY: \"{{resolve:ssm:" in text
    assert text.count('"{{resolve:ssm:${param:originSecretParameter}}}"') == 2


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(BIN / "hadolint"), str(REPO / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
