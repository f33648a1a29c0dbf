"""deploy/: the ECR repository and WAF templates lint clean and hold what they promise, and the
deployer's IAM policies are valid identity policies, each small enough for IAM, that together
allow what a deploy and every command the docs give a deployer need, and little more: no way to
write a role's rights but under the function's permissions boundary.

What a deploy needs is taken from CloudFormation itself: each resource type's schema (bundled
with cfn-lint) lists the IAM permissions its create, read, update and delete handlers call with
the deployer's credentials, and the resource types are those of the templates we really deploy.
"""

import fnmatch
import functools
import json
import re
from pathlib import Path

import cfnlint
import pytest
from cfnlint.decode import cfn_yaml

from tests.deploying import as_list, cfn_lint, package
from tests.helpers import REPO

DEPLOY = REPO / "deploy"
POLICIES = sorted(DEPLOY.glob("deployer-policy-*.json"))
BOUNDARY = DEPLOY / "function-boundary.json"
BOUNDARY_ARN = "arn:aws:iam::${aws:PrincipalAccount}:policy/qasite-function-boundary"
# IAM's limit on a managed policy's size, whitespace not counted (IAM and STS quotas, "IAM
# object quotas": managed policy size 6,144 characters).
MANAGED_POLICY_CHARS = 6144
CFNLINT_DATA = Path(cfnlint.__file__).parent / "data"
ACCOUNT = "123456789012"

# Handler permissions the policy leaves out, and why: features the stack does not use, mostly.
NOT_GRANTED = {
    "apigateway:*Resource": "not IAM actions: API Gateway tags are PUT and DELETE on /tags/*",
    "ec2:*": "the function runs outside any VPC",
    "elasticfilesystem:*": "no file system is mounted",
    "s3files:*": "no file system is mounted",
    "kms:*": "only AWS-owned and AWS-managed keys: no customer managed key to use",
    "logs:AssociateKmsKey": "log groups use CloudWatch's own encryption",
    "logs:DisassociateKmsKey": "log groups use CloudWatch's own encryption",
    "logs:PutBearerTokenAuthentication": "no log ingestion by bearer token",
    "logs:DeleteResourcePolicy": "account-wide log resource policies are not a deployer's business",
    "firehose:*": "no log delivery to Firehose",
    "s3:REST.PUT.OBJECT": "not an IAM action (a log group's S3 export)",
    "s3tables:*": "no S3 tables",
    "s3:*MetadataTableConfiguration": "no S3 metadata tables",
    "s3:UpdateBucketMetadata*": "no S3 metadata tables",
    "payments:*": "no paid Marketplace rule groups",
    "cloudfront:CreateDistributionWithTags": "not an IAM action: CreateDistribution, TagResource",
    "cloudfront:*ConnectionGroup": "not a multi-tenant distribution",
    "cloudfront:GetVpcOrigin": "the origin is public (API Gateway)",
    "cloudfront:UpdateDistributionWithStagingConfig": "no continuous-deployment staging",
    "lambda:GetLayerVersion": "no layers",
    "lambda:*CodeSigningConfig": "no code signing",
    "lambda:PassCapacityProvider": "no Lambda managed instances",
    "lambda:AssociateRuntimeAlias": "no runtime alias",
    "codedeploy:RegisterOnPremisesInstance": "CodeDeploy shifts Lambda aliases only",
    "iam:AttachRolePolicy": "the function's role has inline policies only",
    "iam:DetachRolePolicy": "the function's role has inline policies only",
    "iam:DeleteRolePermissionsBoundary": "the function role's boundary is never removed",
    # The deployment bucket is configured with encryption and a bucket policy, nothing else:
    # its other features are neither set nor cleared by the framework.
    "s3:*Analytics*": "deployment bucket: no analytics",
    "s3:*Accelerate*": "deployment bucket: no transfer acceleration",
    "s3:*Cors": "deployment bucket: no CORS",
    "s3:*CORS": "deployment bucket: no CORS",
    "s3:*Website": "deployment bucket: no website",
    "s3:*Replication*": "deployment bucket: no replication",
    "s3:*Inventory*": "deployment bucket: no inventory",
    "s3:*IntelligentTiering*": "deployment bucket: no intelligent tiering",
    "s3:*Metrics*": "deployment bucket: no request metrics",
    "s3:*Logging": "deployment bucket: no access logging",
    "s3:*Notification": "deployment bucket: no event notifications",
    "s3:*ObjectLock*": "deployment bucket: no object lock",
    "s3:*Abac": "deployment bucket: no attribute-based access control",
    "s3:PutBucketAcl": "deployment bucket: ACLs stay disabled",
    "s3:PutObjectAcl": "deployment bucket: ACLs stay disabled",
    "s3:DeleteBucketEncryption": "deployment bucket: encryption is never removed",
    "s3:DeleteBucketLifecycle": "deployment bucket: no lifecycle rules to remove",
    "s3:TagResource": "deployment bucket: tagged with PutBucketTagging",
    "s3:UntagResource": "deployment bucket: tagged with PutBucketTagging",
    "s3:ListTagsForResource": "deployment bucket: tags read with GetBucketTagging",
}

# What the deployer does besides what CloudFormation's handlers do on its behalf.
DEPLOY_STEPS = {
    "cloudformation:*": "serverless and `aws cloudformation deploy` drive qasite's stacks",
    "s3:GetBucketLocation": "serverless finds its deployment bucket's region",
    "s3:PutObject": "serverless uploads the template to its deployment bucket",
    "lambda:GetAccountSettings": "the concurrency quota check before a first deploy",
    "ecr:GetAuthorizationToken": "docker login to the registry",
    "ecr:BatchCheckLayerAvailability": "docker push",
    "ecr:InitiateLayerUpload": "docker push",
    "ecr:UploadLayerPart": "docker push",
    "ecr:CompleteLayerUpload": "docker push",
    "ecr:PutImage": "docker push",
    "ecr:BatchGetImage": "docker buildx reads back what it pushed",
    "ecr:GetDownloadUrlForLayer": "docker buildx reads back what it pushed",
    "ecr:DescribeImages": "the pushed image's digest, to deploy by",
    "ecr:DescribeImageScanFindings": "the scan on push's findings, read before deploying",
    "ssm:GetParameters": "CloudFormation resolves {{resolve:ssm:...}} as the deployer",
    "ssm:PutParameter": "the secrets are stored once, before the first deploy",
    "logs:FilterLogEvents": "`serverless logs` after a deploy",
    "logs:DescribeLogStreams": "`serverless logs` finds the function's streams",
    "ssm:GetParameter": "the rotation reads the current secret (docs/deploying.md, Secrets)",
    "lambda:ListAliases": "serverless-prune-plugin keeps the versions aliases point at",
    "lambda:InvokeFunction": "the ping that reactivates an Inactive SnapStart version",
    "xray:GetTraceSummaries": "operating.md's traces command",
    "cloudwatch:GetMetricStatistics": "operating.md's commands that read a metric",
    # CloudFormation's CodeDeployLambdaAliasUpdate finds the application and its group.
    "codedeploy:ListApplications": "a gradual deployment (deploymentPreference)",
    "codedeploy:ListDeploymentGroups": "a gradual deployment (deploymentPreference)",
    # API Gateway's guide, "Configuring logging for an HTTP API": what turning on access logs
    # asks of the caller (a log delivery, and the log groups' resource policy it needs).
    "logs:CreateLogDelivery": "the HTTP API's access logs",
    "logs:DeleteLogDelivery": "the HTTP API's access logs",
    "logs:GetLogDelivery": "the HTTP API's access logs",
    "logs:ListLogDeliveries": "the HTTP API's access logs",
    "logs:UpdateLogDelivery": "the HTTP API's access logs",
    "logs:PutResourcePolicy": "the HTTP API's access logs",
}


def load_template(path: Path) -> dict:
    return cfn_yaml.load(str(path))


@functools.cache
def handler_permissions() -> dict[str, set[str]]:
    """Resource type -> the permissions its CloudFormation handlers call, from the registry's
    schemas that cfn-lint bundles."""
    permissions = {}
    for path in (CFNLINT_DATA / "schemas" / "resources").glob("*.json"):
        schema = json.loads(path.read_text())
        if "typeName" in schema:
            permissions[schema["typeName"]] = {
                permission
                for handler in ("create", "read", "update", "delete")
                for permission in schema.get("handlers", {}).get(handler, {}).get("permissions", [])
            }
    return permissions


@functools.cache
def iam_actions() -> dict[str, dict]:
    """service -> {lowercase action: its entry} from the IAM reference data cfn-lint bundles."""
    services = json.loads((CFNLINT_DATA / "AdditionalSpecs" / "Policies.json").read_text())
    return {service: data["Actions"] for service, data in services.items()}


def policy(path: Path) -> dict:
    return json.loads(path.read_text())


def statements() -> list[dict]:
    """Every statement of the deployer's policies, which a deployer has all of."""
    return [statement for path in POLICIES for statement in policy(path)["Statement"]]


def iam_pattern(pattern: str):
    """An IAM wildcard (* any run of characters, ? one) as a regular expression."""
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.IGNORECASE,
    )


def allowed(action: str, resource: str | None = None) -> bool:
    """Whether an Allow statement of the policy grants ``action`` (on ``resource``, an ARN, when
    given), with ${aws:PrincipalAccount} standing for our test account."""
    for statement in statements():
        if not any(iam_pattern(a).fullmatch(action) for a in as_list(statement["Action"])):
            continue
        resources = [
            r.replace("${aws:PrincipalAccount}", ACCOUNT) for r in as_list(statement["Resource"])
        ]
        if resource is None or any(iam_pattern(r).fullmatch(resource) for r in resources):
            return True
    return False


@pytest.fixture(scope="module")
def deployed_templates(tmp_path_factory, image_template) -> dict[str, dict]:
    """Every template a deploy creates stacks from: the site's (as serverless packages it: the
    zip with every optional resource, and the image), the ECR repository's, the web ACL's and
    the CloudFront alarm's."""
    everything = [
        "domainName=qa.example.com",
        "certificateArn=arn:aws:acm:us-east-1:123456789012:certificate/0d1e2f3a",
        "webAclArn=arn:aws:wafv2:us-east-1:123456789012:global/webacl/qasite-prod/a1b2",
        "alarmTopicArn=arn:aws:sns:eu-west-1:123456789012:qasite-alarms",
        "reservedConcurrency=10",
        "keepWarm=true",
        "tracing=true",
        "deploymentPreference=Canary10Percent5Minutes",
    ]
    zip_site = package(tmp_path_factory.mktemp("sls"), *everything)
    return {
        "serverless.yml": json.loads(zip_site.read_text()),
        "serverless.yml, package=image": image_template[1],
        "deploy/ecr.yml": load_template(DEPLOY / "ecr.yml"),
        "deploy/waf.yml": load_template(DEPLOY / "waf.yml"),
        "deploy/cloudfront-alarms.yml": load_template(DEPLOY / "cloudfront-alarms.yml"),
    }


# --- The templates ---


@pytest.mark.parametrize(
    "template, regions",
    [
        ("ecr.yml", ["eu-west-1", "us-east-1", "ap-southeast-2"]),
        ("waf.yml", ["us-east-1"]),
        ("cloudfront-alarms.yml", ["us-east-1"]),
    ],
)
def test_templates_pass_cfn_lint(template, regions):
    cfn_lint(DEPLOY / template, options=("--regions", *regions))


def test_ecr_repository_has_immutable_tags_scan_on_push_and_keeps_the_last_images():
    template = load_template(DEPLOY / "ecr.yml")
    repository = template["Resources"]["Repository"]
    assert repository["DeletionPolicy"] == "Retain"
    properties = repository["Properties"]
    assert properties["ImageTagMutability"] == "IMMUTABLE"
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
    defaults = {name: p["Default"] for name, p in template["Parameters"].items()}
    text = properties["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    rules = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: str(defaults[m[1]]), text))["rules"]
    untagged, keep = sorted(rules, key=lambda rule: rule["rulePriority"])
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": defaults["UntaggedDays"],
    }
    # ECR requires the rule for "any" tag status to come last.
    assert keep["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": defaults["KeepImages"],
    }
    assert all(rule["action"] == {"type": "expire"} for rule in rules)
    [statement] = properties["RepositoryPolicyText"]["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert sorted(statement["Action"]) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert "function:qasite-*" in statement["Condition"]["StringLike"]["aws:sourceArn"]["Fn::Sub"]


def test_web_acl_for_cloudfront_limits_each_address_over_five_minutes():
    template = load_template(DEPLOY / "waf.yml")
    [assertion] = template["Rules"]["InUsEast1"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    acl = template["Resources"]["WebAcl"]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT" and acl["DefaultAction"] == {"Allow": {}}
    questions, requests, common = acl["Rules"]
    for rule, limit in [(questions, "QuestionLimit"), (requests, "RequestLimit")]:
        statement = rule["Statement"]["RateBasedStatement"]
        assert statement["Limit"] == {"Ref": limit}
        assert statement["EvaluationWindowSec"] == 300 and statement["AggregateKeyType"] == "IP"
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON" and "detail" in json.loads(body["Content"])
    scope_down = questions["Statement"]["RateBasedStatement"]["ScopeDownStatement"]
    method = scope_down["ByteMatchStatement"]
    assert method["FieldToMatch"] == {"Method": {}} and method["SearchString"] == "POST"
    assert "ScopeDownStatement" not in requests["Statement"]["RateBasedStatement"]
    # The in-app default (60 questions a minute) over WAF's 5-minute window.
    assert template["Parameters"]["QuestionLimit"]["Default"] == 60 * 5
    condition, managed, absent = common["Fn::If"]
    assert condition == "WithCommonRules" and absent == {"Ref": "AWS::NoValue"}
    assert template["Parameters"]["CommonRules"]["Default"] == "false"
    group = managed["Statement"]["ManagedRuleGroupStatement"]
    assert group["Name"] == "AWSManagedRulesCommonRuleSet"
    counted = {o["Name"] for o in group["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    # Questions and contexts are free text up to 20,000 characters: no body rule may block them.
    assert {"SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY"} <= counted
    assert template["Outputs"]["WebAclArn"]["Value"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


def test_the_cloudfront_alarm_judges_each_minute_by_its_own_share():
    """5xxErrorRate's 5-minute Average would weigh a quiet minute like a busy one: each minute's
    value is that minute's share of its requests, counted only with enough requests, and the
    alarm wants 3 such minutes of 5."""
    template = load_template(DEPLOY / "cloudfront-alarms.yml")
    alarm = template["Resources"]["CloudFront5xxAlarm"]["Properties"]
    metrics = {metric["Id"]: metric for metric in alarm["Metrics"]}
    share, requests = metrics["share"]["MetricStat"], metrics["requests"]["MetricStat"]
    assert share["Metric"]["MetricName"] == "5xxErrorRate" and share["Stat"] == "Average"
    assert requests["Metric"]["MetricName"] == "Requests" and requests["Stat"] == "Sum"
    assert share["Period"] == requests["Period"] == 60
    assert metrics["alarming"]["Expression"] == {
        "Fn::Sub": "IF(requests >= ${MinimumRequests}, share, 0)"
    }
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (5, 3)


# --- The deployer's policy ---


@pytest.mark.parametrize("path", [*POLICIES, BOUNDARY], ids=lambda path: path.name)
def test_each_policy_is_an_iam_identity_policy_within_the_managed_policy_size(path):
    """IAM refuses a managed policy over 6,144 characters (whitespace not counted) with
    LimitExceeded ... PolicySize: each document the docs create must fit, with room to grow."""
    document = policy(path)
    assert len(json.dumps(document, separators=(",", ":"))) <= MANAGED_POLICY_CHARS * 0.9
    assert set(document) == {"Version", "Statement"} and document["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert all(re.fullmatch(r"[A-Za-z0-9]+", s) for s in sids)
    for statement in document["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Effect"] == "Allow" and statement["Action"] and statement["Resource"]
        # Policy variables must be ones IAM knows; only the account is used.
        text = json.dumps(statement["Resource"])
        assert set(re.findall(r"\$\{[^}]*\}", text)) <= {"${aws:PrincipalAccount}"}


def test_the_deployer_policies_are_all_created_by_the_docs_and_share_no_statement_id():
    sids = [statement["Sid"] for statement in statements()]
    assert len(POLICIES) >= 2 and len(sids) == len(set(sids))
    text = (REPO / "docs" / "deploying.md").read_text()
    for path in [*POLICIES, BOUNDARY]:
        assert f"file://deploy/{path.name}" in text, path.name


def test_deployer_policy_names_only_real_actions_and_no_service_wildcards():
    known = iam_actions()
    for statement in statements():
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            assert "*" not in action, action
            assert name.lower() in known[service], f"{action} is not an IAM action"


def test_deployer_policy_grants_all_resources_only_where_an_action_has_no_resource_type():
    """An action that supports resource-level permissions is scoped; one that does not appears
    only with Resource "*" (scoped, it would never apply)."""
    known = iam_actions()
    for statement in statements():
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            scoped = bool(known[service][name.lower()].get("Resources"))
            assert scoped == (statement["Resource"] != "*"), action


def not_granted(permission: str) -> bool:
    return any(fnmatch.fnmatchcase(permission, pattern) for pattern in NOT_GRANTED)


def test_deployer_policy_allows_every_handler_permission_of_every_deployed_resource(
    deployed_templates,
):
    missing = {}
    for name, template in deployed_templates.items():
        for logical_id, resource in template["Resources"].items():
            needed = handler_permissions()[resource["Type"]]
            gaps = sorted(p for p in needed if not not_granted(p) and not allowed(p))
            if gaps:
                missing[f"{name}: {logical_id} ({resource['Type']})"] = gaps
    assert not missing, json.dumps(missing, indent=2)


def test_every_permission_left_out_is_one_some_deployed_resource_could_call(
    deployed_templates,
):
    """The list of permissions left out stays honest: each entry matches something needed,
    and none is granted after all."""
    needed = {
        permission
        for template in deployed_templates.values()
        for resource in template["Resources"].values()
        for permission in handler_permissions()[resource["Type"]]
    }
    for pattern in NOT_GRANTED:
        assert any(fnmatch.fnmatchcase(p, pattern) for p in needed), pattern
        assert not allowed(pattern.replace("*", "X")), f"{pattern} is left out, yet granted"


def test_deployer_policy_grants_nothing_a_deploy_does_not_use(deployed_templates):
    needed = {
        permission.lower()
        for template in deployed_templates.values()
        for resource in template["Resources"].values()
        for permission in handler_permissions()[resource["Type"]]
    }
    for statement in statements():
        for action in as_list(statement["Action"]):
            step = any(fnmatch.fnmatchcase(action, pattern) for pattern in DEPLOY_STEPS)
            assert action.lower() in needed or step, f"{action}: what needs it?"
    for pattern in DEPLOY_STEPS:
        assert allowed(pattern.replace("*", "CreateStack")), pattern


@pytest.mark.parametrize(
    "action, resource",
    [
        ("cloudformation:UpdateStack", "arn:aws:cloudformation:eu-west-1:{a}:stack/qasite-prod/1"),
        (
            "cloudformation:CreateStack",
            "arn:aws:cloudformation:us-east-1:{a}:stack/qasite-prod-waf/5e6f",
        ),
        ("cloudformation:CreateStack", "arn:aws:cloudformation:eu-west-1:{a}:stack/qasite-ecr/1"),
        ("s3:PutObject", "arn:aws:s3:::qasite-prod-serverlessdeploymentbucket-1x2y3z/serverless/x"),
        ("lambda:UpdateFunctionCode", "arn:aws:lambda:eu-west-1:{a}:function:qasite-prod-web"),
        ("lambda:PublishVersion", "arn:aws:lambda:eu-west-1:{a}:function:qasite-prod-web"),
        ("lambda:DeleteFunction", "arn:aws:lambda:eu-west-1:{a}:function:qasite-prod-web:7"),
        ("iam:PassRole", "arn:aws:iam::{a}:role/qasite-prod-eu-west-1-lambdaRole"),
        (
            "logs:PutRetentionPolicy",
            "arn:aws:logs:eu-west-1:{a}:log-group:/aws/lambda/qasite-prod-web",
        ),
        ("events:PutRule", "arn:aws:events:eu-west-1:{a}:rule/qasite-prod-WebEventsRule-AB"),
        ("ssm:GetParameters", "arn:aws:ssm:eu-west-1:{a}:parameter/qasite/prod/origin-secret"),
        ("ecr:PutImage", "arn:aws:ecr:eu-west-1:{a}:repository/qasite"),
        ("wafv2:CreateWebACL", "arn:aws:wafv2:us-east-1:{a}:global/webacl/qasite-prod/1234"),
        ("cloudfront:UpdateDistribution", "arn:aws:cloudfront::{a}:distribution/E2QWRUHEXAMPLE"),
        ("cloudfront:UpdateCachePolicy", "arn:aws:cloudfront::{a}:cache-policy/658327ea-f89d"),
        (
            "logs:PutRetentionPolicy",
            "arn:aws:logs:eu-west-1:{a}:log-group:/aws/http-api/qasite-prod",
        ),
        (
            "cloudwatch:PutMetricAlarm",
            "arn:aws:cloudwatch:eu-west-1:{a}:alarm:qasite-prod-FunctionErrorsAlarm-1AB2",
        ),
        (
            "cloudwatch:PutMetricAlarm",
            "arn:aws:cloudwatch:us-east-1:{a}:alarm:qasite-prod-cloudfront-alarms-CloudFront5xx-9Z",
        ),
    ],
)
def test_deployer_policy_covers_the_names_qasite_uses(action, resource):
    assert allowed(action, resource.format(a=ACCOUNT))


@pytest.mark.parametrize(
    "action, resource",
    [
        ("lambda:UpdateFunctionCode", "arn:aws:lambda:eu-west-1:{a}:function:payments-prod-api"),
        ("lambda:UpdateFunctionCode", "arn:aws:lambda:eu-west-1:999999999999:function:qasite-x"),
        ("iam:CreateRole", "arn:aws:iam::{a}:role/admin"),
        ("iam:PutRolePolicy", "arn:aws:iam::{a}:role/OrganizationAccountAccessRole"),
        ("cloudformation:DeleteStack", "arn:aws:cloudformation:eu-west-1:{a}:stack/billing/1"),
        ("s3:GetObject", "arn:aws:s3:::company-backups/db.sql"),
        ("ssm:GetParameter", "arn:aws:ssm:eu-west-1:{a}:parameter/payments/db-password"),
        ("ecr:PutImage", "arn:aws:ecr:eu-west-1:{a}:repository/other"),
        ("logs:DeleteLogGroup", "arn:aws:logs:eu-west-1:{a}:log-group:/aws/lambda/other"),
        ("iam:CreateUser", "arn:aws:iam::{a}:user/qasite-deployer"),
        ("iam:CreatePolicyVersion", "arn:aws:iam::{a}:policy/qasite-deployer"),
        ("sts:AssumeRole", "arn:aws:iam::{a}:role/qasite-prod-eu-west-1-lambdaRole"),
        ("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:eu-west-1:{a}:alarm:billing-alarm"),
    ],
)
def test_deployer_policy_reaches_nothing_else(action, resource):
    assert not allowed(action, resource.format(a=ACCOUNT))


def test_the_deployer_may_pass_each_role_to_its_own_service_only():
    passes = {
        statement["Resource"]: statement["Condition"]
        for statement in statements()
        if "iam:PassRole" in as_list(statement["Action"])
    }
    assert passes == {
        role: {"StringEquals": {"iam:PassedToService": f"{service}.amazonaws.com"}}
        for role, service in zip(QASITE_ROLES, ["lambda", "codedeploy"], strict=True)
    }


# --- No way to administrator: the function's role is written only under its boundary ---

# What writes a principal's rights (or who may take a role's): IAM's actions that create a role,
# user or group, write, attach or detach a policy, set a policy version, remove a boundary, or
# change a trust policy.
RIGHTS_WRITING = re.compile(
    r"iam:(Create(Role|User|Group|Policy|PolicyVersion|AccessKey|LoginProfile)|"
    r"Put\w*Policy|Attach\w*Policy|Detach\w*Policy|Delete\w*Policy|SetDefaultPolicyVersion|"
    r"\w*PermissionsBoundary|AddUserToGroup|UpdateAssumeRolePolicy|UpdateLoginProfile|"
    r"AddRoleToInstanceProfile|PassRole)",
    re.IGNORECASE,
)
# IAM's service authorization reference: the role actions that take iam:PermissionsBoundary.
BOUNDARY_CONDITION_ACTIONS = {
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
}
# Allowed without the condition, each on the function's role alone, and why that is safe.
UNBOUNDED_ROLE_ACTIONS = {
    "iam:PassRole": "each role to its own service only (its own test); the roles are bounded",
    "iam:UpdateAssumeRolePolicy": "who may assume a role created with the boundary, no more",
}
# The roles a deploy creates: the function's, and CodeDeploy's (deploymentPreference).
QASITE_ROLES = [
    "arn:aws:iam::${aws:PrincipalAccount}:role/qasite-*-lambdaRole",
    "arn:aws:iam::${aws:PrincipalAccount}:role/qasite-*-codeDeployRole",
]


def test_no_statement_writes_rights_without_the_function_boundary():
    """The deployer could otherwise create a role with any policy (*:* included), pass it to a
    function it deploys, and run code with administrator's rights."""
    iam = iam_actions()["iam"]
    for statement in statements():
        for action in as_list(statement["Action"]):
            if not RIGHTS_WRITING.fullmatch(action):
                continue
            assert action.split(":")[1].lower() in iam, action
            assert set(as_list(statement["Resource"])) <= set(QASITE_ROLES), action
            if action in UNBOUNDED_ROLE_ACTIONS:
                continue
            assert action in BOUNDARY_CONDITION_ACTIONS, f"{action}: never grantable here"
            assert statement["Condition"] == {
                "StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}
            }, action
    # And what a deploy needs of them is there: creating the role and writing its policy.
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"):
        assert allowed(action, f"arn:aws:iam::{ACCOUNT}:role/qasite-prod-eu-west-1-lambdaRole")


@pytest.mark.parametrize("role_id", ["IamRoleLambdaExecution", "CodeDeployServiceRole"])
def test_each_role_has_the_boundary_and_the_boundary_allows_what_it_needs(
    deployed_templates, role_id
):
    """Each role a deploy creates names the boundary the deployer's policies demand, and every
    permission of its inline policy (the function's logs, its secret, decryption through SSM,
    X-Ray with tracing; CodeDeploy's alias shift and alarm reads) lies inside the boundary, or
    it would be refused at run time."""
    role = deployed_templates["serverless.yml"]["Resources"][role_id]
    boundary_arn = role["Properties"]["PermissionsBoundary"]["Fn::Sub"]
    assert boundary_arn == BOUNDARY_ARN.replace("arn:aws:", "arn:${AWS::Partition}:").replace(
        "${aws:PrincipalAccount}", "${AWS::AccountId}"
    )
    boundary = policy(BOUNDARY)["Statement"]
    needed = [
        statement
        for document in role["Properties"]["Policies"]
        for statement in document["PolicyDocument"]["Statement"]
    ]
    assert {a for s in needed for a in as_list(s["Action"])} & {
        "ssm:GetParameter",
        "lambda:UpdateAlias",
        "xray:PutTraceSegments",
    }
    for statement in needed:
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                arn = resource["Fn::Sub"] if isinstance(resource, dict) else resource
                arn = re.sub(r"\$\{AWS::(Partition)\}", "aws", arn)
                arn = arn.replace("${AWS::Region}", "eu-west-1").replace(
                    "${AWS::AccountId}", ACCOUNT
                )
                assert any(
                    any(iam_pattern(a).fullmatch(action) for a in as_list(b["Action"]))
                    and any(
                        iam_pattern(r.replace("${aws:PrincipalAccount}", ACCOUNT)).fullmatch(arn)
                        for r in as_list(b["Resource"])
                    )
                    for b in boundary
                ), f"{action} on {arn} is outside the boundary"


def test_the_boundary_grants_nothing_that_writes_rights_or_reaches_other_parameters():
    for statement in policy(BOUNDARY)["Statement"]:
        for action in as_list(statement["Action"]):
            assert not action.startswith(("iam:", "sts:")), action
            if action.startswith("lambda:"):  # CodeDeploy's alias shift, qasite's functions only
                assert action in {
                    "lambda:GetAlias",
                    "lambda:UpdateAlias",
                    "lambda:GetProvisionedConcurrencyConfig",
                }
                assert statement["Resource"].endswith(":function:qasite-*")
    assert not any(
        fnmatch.fnmatchcase(r, "*parameter/payments*")
        for s in policy(BOUNDARY)["Statement"]
        for r in as_list(s["Resource"])
    )


# --- Every command the docs give a deployer, against the policies ---

# Each AWS CLI command and serverless command the docs run, and the IAM actions it calls. A
# command missing here fails the test below: add it, with what it calls.
COMMAND_ACTIONS = {
    "aws acm describe-certificate": {"acm:DescribeCertificate"},
    "aws acm request-certificate": {"acm:RequestCertificate"},
    "aws acm delete-certificate": {"acm:DeleteCertificate"},
    "aws acm wait": {"acm:DescribeCertificate"},
    "aws apigatewayv2 get-apis": {"apigateway:GET"},
    "aws cloudformation delete-stack": {"cloudformation:DeleteStack"},
    "aws cloudformation deploy": {
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
    },
    "aws cloudformation describe-stacks": {"cloudformation:DescribeStacks"},
    "aws cloudformation update-termination-protection": {
        "cloudformation:UpdateTerminationProtection"
    },
    "aws cloudfront get-distribution-config": {"cloudfront:GetDistributionConfig"},
    "aws cloudfront get-response-headers-policy": {"cloudfront:GetResponseHeadersPolicy"},
    "aws cloudfront wait": {"cloudfront:GetDistribution"},
    "aws cloudwatch describe-alarms": {"cloudwatch:DescribeAlarms"},
    "aws cloudwatch get-metric-statistics": {"cloudwatch:GetMetricStatistics"},
    "aws deploy list-deployments": {"codedeploy:ListDeployments"},
    "aws deploy get-deployment": {"codedeploy:GetDeployment"},
    "aws ecr batch-get-image": {"ecr:BatchGetImage"},
    "aws ecr delete-repository": {"ecr:DeleteRepository"},
    "aws ecr describe-image-scan-findings": {"ecr:DescribeImageScanFindings"},
    "aws ecr describe-images": {"ecr:DescribeImages"},
    "aws ecr get-login-password": {"ecr:GetAuthorizationToken"},
    "aws iam attach-role-policy": {"iam:AttachRolePolicy"},
    "aws iam create-policy": {"iam:CreatePolicy"},
    "aws lambda get-account-settings": {"lambda:GetAccountSettings"},
    "aws lambda get-function-configuration": {"lambda:GetFunctionConfiguration"},
    "aws lambda invoke": {"lambda:InvokeFunction"},
    "aws lambda list-versions-by-function": {"lambda:ListVersionsByFunction"},
    "aws lambda update-alias": {"lambda:UpdateAlias"},
    "aws logs delete-log-group": {"logs:DeleteLogGroup"},
    "aws logs tail": {"logs:FilterLogEvents"},
    "aws logs filter-log-events": {"logs:FilterLogEvents"},
    "aws iam get-role": {"iam:GetRole"},
    "aws iam delete-policy": {"iam:DeletePolicy"},
    "aws cloudformation describe-stack-resources": {"cloudformation:DescribeStackResources"},
    "aws service-quotas request-service-quota-increase": {
        "servicequotas:RequestServiceQuotaIncrease"
    },
    "aws sns create-topic": {"sns:CreateTopic"},
    "aws sns delete-topic": {"sns:DeleteTopic"},
    "aws sns subscribe": {"sns:Subscribe"},
    "aws ssm delete-parameters": {"ssm:DeleteParameters"},
    "aws ssm get-parameter": {"ssm:GetParameter"},
    "aws ssm put-parameter": {"ssm:PutParameter"},
    "aws xray get-trace-summaries": {"xray:GetTraceSummaries"},
    # serverless (osls): what it calls besides the stack's own handlers (tested above).
    "serverless deploy": {
        "cloudformation:DescribeStacks",
        "cloudformation:ValidateTemplate",
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:UpdateTerminationProtection",
        "s3:ListBucket",
        "s3:PutObject",
        "ssm:GetParameters",
        "lambda:ListVersionsByFunction",
        "lambda:ListAliases",
        "lambda:DeleteFunction",
    },
    "serverless deploy list": {"s3:ListBucket", "cloudformation:DescribeStackResource"},
    "serverless logs": {"logs:DescribeLogStreams", "logs:FilterLogEvents"},
    "serverless package": set(),
    "serverless prune": {
        "lambda:ListVersionsByFunction",
        "lambda:ListAliases",
        "lambda:DeleteFunction",
    },
    "serverless remove": {"cloudformation:DeleteStack", "s3:ListBucket", "s3:DeleteObject"},
    "serverless rollback": {"s3:ListBucket", "s3:GetObject", "cloudformation:UpdateStack"},
}
DOCS = [REPO / "docs" / "deploying.md", REPO / "docs" / "operating.md"]
COMMAND = re.compile(r"\baws ([a-z0-9-]+) ([a-z0-9-]+)|\bserverless ([a-z]+)(?: (list))?")


def doc_commands() -> list[tuple[str, bool, str]]:
    """(command, for an administrator?, where) for every AWS CLI and serverless command the docs
    show: in shell blocks, and in `code` within a table row. A block's commands are an
    administrator's when the paragraph before it says *administrator*, or after a line
    `# administrator:` in it; a table row's when the row says so."""
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        in_block, admin, paragraph, blank = False, False, [], False
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                in_block = not in_block
                admin = in_block and "*administrator*" in " ".join(paragraph)
                paragraph = []
                continue
            if not in_block:
                if line.strip():
                    paragraph = [line] if blank else [*paragraph, line]
                blank = not line.strip()
                if line.startswith("|"):
                    row_admin = "*administrator*" in line
                    for code in re.findall(r"`([^`]*)`", line):
                        found += [(c, row_admin, f"{path.name}:{number}") for c in commands(code)]
                continue
            if re.match(r"\s*# administrator", line):
                admin = True
            elif re.match(r"\s*# the deployer", line):
                admin = False
            code = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
            found += [(c, admin, f"{path.name}:{number}") for c in commands(code)]
    return found


def commands(code: str) -> list[str]:
    return [
        f"aws {m[1]} {m[2]}" if m[1] else " ".join(filter(None, ["serverless", m[3], m[4]]))
        for m in COMMAND.finditer(code)
    ]


def test_every_command_the_docs_give_a_deployer_is_allowed_by_the_policies():
    """A deployer with exactly the deployer's policies can run every command the docs give
    them; what the policies do not allow is marked *administrator* where the docs show it."""
    found = doc_commands()
    assert len(found) > 40
    unknown = sorted({command for command, _, _ in found} - set(COMMAND_ACTIONS))
    assert not unknown, f"add to COMMAND_ACTIONS: {unknown}"
    refused = [
        f"{where}: {command} needs {action}"
        for command, admin, where in found
        if not admin
        for action in sorted(COMMAND_ACTIONS[command])
        if not allowed(action)
    ]
    assert not refused, "\n".join(refused)


def test_what_the_docs_mark_administrator_is_beyond_the_deployer():
    """The mark stays honest: each command marked so needs something the policies withhold."""
    for command, admin, where in doc_commands():
        if admin and COMMAND_ACTIONS[command]:
            assert not all(allowed(a) for a in COMMAND_ACTIONS[command]), f"{where}: {command}"


def test_every_deployer_command_s_actions_are_real_iam_actions():
    known = iam_actions()
    for actions in COMMAND_ACTIONS.values():
        for action in actions:
            service, _, name = action.partition(":")
            assert name.lower() in known[service], action


def test_the_shortest_path_comes_first_and_runs_every_step_a_site_needs():
    """deploying.md opens with the fewest steps to a working site, in order: the policies and
    the boundary, both secrets, the zip, the deploy, the URL and the smoke test."""
    text = (REPO / "docs" / "deploying.md").read_text()
    shortest = text.index("## The shortest path")
    assert shortest < text.index("## 1. Prerequisites")
    block = text[shortest:].split("```sh\n", 1)[1].split("```", 1)[0]
    steps = [
        "npm ci",
        "file://deploy/deployer-policy-$p.json",
        "file://deploy/function-boundary.json",
        "--name /qasite/prod/origin-secret --type SecureString",
        "--name /qasite/prod/origin-secret-cloudfront --type String",
        "make zip",
        "npx serverless deploy --stage prod --region eu-west-1",
        "OutputKey=='CloudFrontUrl'",
        'python3 -m qa.operations.smoke "$URL"',
    ]
    positions = [block.index(step) for step in steps]
    assert positions == sorted(positions)
    assert {f"deployer-policy-{p}.json" for p in ("core", "extras")} == {p.name for p in POLICIES}
