"""serverless.yml packages offline to valid CloudFormation, as a zip with SnapStart and as a
container image, and the Dockerfile lints clean."""

import base64
import hashlib
import json
import subprocess

import pytest

from tests.deploying import BIN, IMAGE, REPO, ZIP_BYTES, cfn_lint, package


@pytest.fixture(scope="module")
def default_template(tmp_path_factory):
    path = package(tmp_path_factory.mktemp("sls"))
    return path, json.loads(path.read_text())


@pytest.fixture(scope="module")
def image_template(tmp_path_factory):
    path = package(tmp_path_factory.mktemp("sls-image"), "package=image")
    return path, json.loads(path.read_text())


def test_default_template_passes_cfn_lint(default_template):
    cfn_lint(default_template[0])


def test_image_template_passes_cfn_lint(image_template):
    cfn_lint(image_template[0])


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
    assert "PackageType" not in function and function["Code"]["S3Key"].endswith("/lambda-x86_64.zip")
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
    assert resources["WebLambdaPermissionEventsRuleSchedule1"]["Properties"]["FunctionName"] == target


def test_function_runs_the_baked_model_with_chosen_limits(default_template, image_template):
    for template in (default_template, image_template):
        function = template[1]["Resources"]["WebLambdaFunction"]["Properties"]
        assert function["Timeout"] < 30 and function["MemorySize"] == 2048
        assert function["ReservedConcurrentExecutions"] == 20
        variables = function["Environment"]["Variables"]
        assert variables["QA_MODEL"] == "/var/task/model" and variables["HF_HUB_OFFLINE"] == "1"
        assert variables["QA_MODEL_NAME"] == "mrm8488/bert-tiny-5-finetuned-squadv2"
        assert "QA_FAST" not in variables  # fast mode is the torch engine's; neither package has torch
        environment = json.dumps(function["Environment"])
        assert "{{resolve:ssm:/qasite/prod/django-secret-key}}" in environment
        assert "DJANGO_CSRF_TRUSTED_ORIGINS" in environment and "CloudFrontDistribution" in environment


def test_image_runs_by_digest_without_snapstart(image_template):
    """AWS offers SnapStart for no container image: the image function has none, and its
    callers invoke it unqualified."""
    resources = image_template[1]["Resources"]
    function = resources["WebLambdaFunction"]["Properties"]
    assert function["PackageType"] == "Image"
    assert function["Code"] == {"ImageUri": IMAGE}
    assert not {"SnapStart", "Runtime", "Handler"} & set(function)
    assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert resources["HttpApiIntegrationWeb"]["Properties"]["IntegrationUri"] == FUNCTION_ARN


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


def test_the_image_serves_the_torch_free_tree():
    """torch and transformers bake the model in a stage of their own; the image is the Lambda base
    image with the runtime tree that build-runtime.sh and assemble.sh make, as the zip is."""
    stages = (REPO / "Dockerfile").read_text().split("\nFROM ")[1:]
    bake, build, final = stages
    assert bake.startswith("public.ecr.aws/lambda/python:3.12 AS bake")
    assert "requirements/build.txt" in bake and "fetch_model" in bake
    assert "requirements/build.txt" not in build + final
    assert "docker/build-runtime.sh" in build and "docker/assemble.sh" in build
    assert "COPY --from=bake /model " in build
    assert final.startswith("public.ecr.aws/lambda/python:3.12\n")
    assert [line for line in final.splitlines() if line.startswith("COPY")] == [
        "COPY --from=build /var/task /var/task"
    ]
