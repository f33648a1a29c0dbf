'use strict';
// serverless.yml's parameters, checked at package time (so `serverless package` and `deploy`
// refuse, with a message, a combination AWS would refuse halfway through a deploy), and what no
// variable can express:
// - the template's Conditions compare package-time parameters, so each is constant: they are
//   settled here (a resource whose condition is false is left out, an Fn::If becomes its
//   branch), and the template deployed and linted holds exactly what is in effect;
// - no reserved concurrency when the parameter is empty or 0;
// - the duration alarm's threshold, from the function's timeout;
// - with deploymentPreference, CodeDeploy's gradual shift of the SnapStart alias, rolled back
//   by the alarms (what AWS SAM's DeploymentPreference generates);
// - before a deploy, that the secrets' SSM parameters exist (a missing one would otherwise fail
//   the first deploy after CloudFront's 5 to 15 minutes, and roll it all back);
// - after a deploy, the stack's termination protection.

const DURATION_ALARM_SHARE = 0.8; // p99 at 80% of the timeout

// Regions whose Lambda offers no SnapStart: there a function with it fails to deploy. From the
// list of supported regions in AWS Lambda's guide ("Improving startup performance with Lambda
// SnapStart", supported features and limitations); a region AWS adds there comes out of here.
const NO_SNAPSTART_REGIONS = ['ap-east-2', 'ap-southeast-6'];

// CodeDeploy's predefined configurations for Lambda (CodeDeployDefault.Lambda<name>).
const DEPLOYMENT_PREFERENCES = [
  'Canary10Percent5Minutes',
  'Canary10Percent10Minutes',
  'Canary10Percent15Minutes',
  'Canary10Percent30Minutes',
  'Linear10PercentEvery1Minute',
  'Linear10PercentEvery2Minutes',
  'Linear10PercentEvery3Minutes',
  'Linear10PercentEvery10Minutes',
  'AllAtOnce',
];
// The alarms that stop a gradual deployment and move the alias back: the new version's faults
// (the function's alarms see both versions while traffic is split, as SAM's do).
const ROLLBACK_ALARMS = [
  'FunctionErrorsAlarm',
  'ModelLoadFailuresAlarm',
  'ServerErrorsAlarm',
  'HttpApi5xxAlarm',
];

// The command that creates each secret's parameter (docs/deploying.md, "Secrets").
const createCommand = (region, name, type) =>
  `aws ssm put-parameter --region ${region} --name ${name} --type ${type} --value "$SECRET"`;

class QasiteParams {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = {
      'before:package:initialize': () => this.check(),
      'after:aws:package:finalize:mergeCustomProviderResources': () => this.finish(),
      'before:deploy:deploy': () => this.checkParameters(),
      'after:deploy:deploy': () => this.protect(),
    };
  }

  get provider() {
    return this.serverless.getProvider('aws');
  }

  // The parameters given with --param="name=value" (not the defaults).
  given() {
    const given = {};
    for (const entry of [].concat(this.options.param || [])) {
      const at = entry.indexOf('=');
      if (at > 0) given[entry.slice(0, at)] = entry.slice(at + 1);
    }
    return given;
  }

  fail(message) {
    throw new this.serverless.classes.Error(`qasite: ${message}`);
  }

  check() {
    const service = this.serverless.service;
    // As ${param:name} resolves: --param, else the stage's params, else the default ones.
    const params = this.serverless.configurationInput.params || {};
    const given = this.given();
    const sources = [given, params[service.provider.stage] || {}, params.default || {}];
    const param = (name) => {
      for (const source of sources) {
        if (name in source) return source[name] === null ? '' : String(source[name]);
      }
      return '';
    };
    this.param = param;
    const pkg = param('package');
    if (!['zip', 'image'].includes(pkg)) this.fail(`package=${pkg}: expected zip or image`);
    const tracing = param('tracing');
    if (!['true', 'false'].includes(tracing)) {
      this.fail(`tracing=${tracing}: expected true or false`);
    }
    const architecture = param('architecture');
    if (!['x86_64', 'arm64'].includes(architecture)) {
      this.fail(`architecture=${architecture}: expected x86_64 or arm64`);
    }
    const region = service.provider.region;
    if (pkg === 'zip' && param('snapStart') === 'true' && NO_SNAPSTART_REGIONS.includes(region)) {
      this.fail(
        `snapStart=true: AWS Lambda offers no SnapStart in ${region}. Deploy with ` +
          '--param="snapStart=false" (every cold start then runs the init phase), or to a region ' +
          'that has it.'
      );
    }
    if (!/^[1-9]\d*$/.test(param('keepVersions'))) {
      this.fail(`keepVersions=${param('keepVersions')}: expected a whole number, 1 or more`);
    }
    const preference = param('deploymentPreference');
    if (preference && !DEPLOYMENT_PREFERENCES.includes(preference)) {
      this.fail(
        `deploymentPreference=${preference}: expected one of ${DEPLOYMENT_PREFERENCES.join(', ')}`
      );
    }
    if (preference && !(pkg === 'zip' && param('snapStart') === 'true')) {
      this.fail(
        'deploymentPreference shifts the alias SnapStart publishes: it needs package=zip ' +
          'with snapStart=true'
      );
    }
    const protection = param('terminationProtection');
    if (!['', 'true', 'false'].includes(protection)) {
      this.fail(`terminationProtection=${protection}: expected true, false, or empty`);
    }
    if (pkg === 'image') {
      if (given.snapStart === 'true') {
        this.fail(
          'snapStart=true needs package=zip: AWS Lambda offers SnapStart for no container ' +
            'image. Deploy the zip (package=zip, the default), or the image without snapStart.'
        );
      }
      if (!/@sha256:[0-9a-f]{64}$/.test(param('imageUri'))) {
        this.fail(
          'package=image needs imageUri=<repository URI>@sha256:<digest> (deploy by digest: ' +
            'the digest `aws ecr describe-images` gives, not a tag)'
        );
      }
    }
    if (!param('domainName') !== !param('certificateArn')) {
      this.fail('domainName and certificateArn go together: give both, or neither');
    }
    const certificate = param('certificateArn');
    if (certificate && !/^arn:aws[\w-]*:acm:us-east-1:\d{12}:certificate\//.test(certificate)) {
      this.fail('certificateArn must be an ACM certificate in us-east-1, CloudFront\'s region');
    }
    const webAcl = param('webAclArn');
    if (webAcl && !/^arn:aws[\w-]*:wafv2:us-east-1:\d{12}:global\/webacl\//.test(webAcl)) {
      this.fail('webAclArn must be a CLOUDFRONT web ACL (us-east-1): deploy/waf.yml makes one');
    }
    const topic = param('alarmTopicArn');
    if (topic && !new RegExp(`^arn:aws[\\w-]*:sns:${region}:\\d{12}:[\\w-]+$`).test(topic)) {
      this.fail(`alarmTopicArn must be an SNS topic in the stack's region (${region})`);
    }
    const reserved = param('reservedConcurrency').trim();
    if (!/^\d*$/.test(reserved)) {
      this.fail(`reservedConcurrency=${reserved}: expected a whole number, or empty for none`);
    }
    if (Number(reserved) > 0) service.functions.web.reservedConcurrency = Number(reserved);
  }

  // Before a deploy: both secrets' parameters exist, of the types the stack reads them as.
  // ssm:GetParameters without decryption: a SecureString's value is not even decrypted.
  async checkParameters() {
    if (!this.param) this.check(); // `deploy --package <dir>` packages nothing
    const region = this.serverless.service.provider.region;
    const wanted = [
      [this.param('originSecretParameter'), 'SecureString'],
      [this.param('cloudFrontSecretParameter'), 'String'],
    ];
    const { Parameters: found = [], InvalidParameters: missing = [] } =
      await this.provider.request('SSM', 'getParameters', { Names: wanted.map(([n]) => n) });
    const problems = [];
    for (const [name, type] of wanted) {
      const bare = name.replace(/:\d+$/, '');
      const parameter = found.find((p) => p.Name === bare);
      if (missing.includes(name) || !parameter) {
        problems.push(`${name} does not exist in ${region}. Create it:\n  ` +
          createCommand(region, bare, type));
      } else if (parameter.Type !== type) {
        problems.push(`${name} is a ${parameter.Type}; the stack reads it as a ${type}. ` +
          `Delete it and create it again:\n  ${createCommand(region, bare, type)}`);
      }
    }
    if (problems.length) {
      this.fail(`the origin secret's parameters are not ready (docs/deploying.md, "Secrets"):\n` +
        problems.join('\n'));
    }
  }

  // After a deploy: termination protection as the parameter says (empty: on for prod only).
  async protect() {
    if (!this.param) this.check(); // `deploy --package <dir>` packages nothing
    const stage = this.serverless.service.provider.stage;
    const setting = this.param('terminationProtection');
    const enabled = setting === '' ? stage === 'prod' : setting === 'true';
    await this.provider.request('CloudFormation', 'updateTerminationProtection', {
      StackName: this.provider.naming.getStackName(),
      EnableTerminationProtection: enabled,
    });
  }

  finish() {
    const template = this.serverless.service.provider.compiledCloudFormationTemplate;
    const conditions = template.Conditions || {};
    const value = (condition) => {
      if (typeof condition === 'object' && condition !== null) {
        const [[fn, args]] = Object.entries(condition);
        if (fn === 'Condition') return value(conditions[args]);
        if (fn === 'Fn::Not') return !value(args[0]);
        if (fn === 'Fn::And') return args.every(value);
        if (fn === 'Fn::Or') return args.some(value);
        if (fn === 'Fn::Equals' && args.every((arg) => typeof arg === 'string')) {
          return args[0] === args[1];
        }
      }
      this.fail(`condition ${JSON.stringify(condition)} is not one of package-time parameters`);
    };
    const settled = Object.fromEntries(
      Object.entries(conditions).map(([name, condition]) => [name, value(condition)])
    );
    // Fn::If -> its branch; AWS::NoValue -> the key (or list item) left out.
    const NO_VALUE = Symbol('NoValue');
    const settle = (node) => {
      if (Array.isArray(node)) return node.map(settle).filter((item) => item !== NO_VALUE);
      if (typeof node !== 'object' || node === null) return node;
      if (node.Ref === 'AWS::NoValue') return NO_VALUE;
      if ('Fn::If' in node) {
        const [name, then, otherwise] = node['Fn::If'];
        return settle(settled[name] ? then : otherwise);
      }
      const out = {};
      for (const [key, child] of Object.entries(node)) {
        const settledChild = settle(child);
        if (settledChild !== NO_VALUE) out[key] = settledChild;
      }
      return out;
    };
    for (const [id, resource] of Object.entries(template.Resources)) {
      if (resource.Condition && !settled[resource.Condition]) delete template.Resources[id];
      else {
        delete resource.Condition;
        template.Resources[id] = settle(resource);
      }
    }
    if (template.Outputs) template.Outputs = settle(template.Outputs);
    delete template.Conditions;

    const preference = this.param('deploymentPreference');
    if (preference) this.shiftGradually(template.Resources, preference);

    const alarm = template.Resources.FunctionDurationAlarm;
    if (alarm) {
      const timeout = template.Resources.WebLambdaFunction.Properties.Timeout;
      alarm.Properties.Threshold = Math.round(timeout * 1000 * DURATION_ALARM_SHARE);
    }
  }
}

// CodeDeploy moves the alias to each new version by `preference`, and back on a rollback alarm.
// Its role is named like the function's and carries the same boundary, which allows the alias
// actions CodeDeploy needs (deploy/function-boundary.json).
QasiteParams.prototype.shiftGradually = function shiftGradually(resources, preference) {
  const [alias] = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Alias');
  const role = resources.IamRoleLambdaExecution.Properties;
  const arn = (service, resource) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}:${resource}`,
  });
  resources.CodeDeployApplication = {
    Type: 'AWS::CodeDeploy::Application',
    Properties: { ComputePlatform: 'Lambda' },
  };
  resources.CodeDeployServiceRole = {
    Type: 'AWS::IAM::Role',
    Properties: {
      RoleName: {
        'Fn::Sub': `qasite-${this.serverless.service.provider.stage}-\${AWS::Region}-codeDeployRole`,
      },
      PermissionsBoundary: role.PermissionsBoundary,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: ['codedeploy.amazonaws.com'] },
            Action: ['sts:AssumeRole'],
          },
        ],
      },
      Policies: [
        {
          PolicyName: 'shift-the-alias',
          PolicyDocument: {
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Action: [
                  'lambda:GetAlias',
                  'lambda:GetProvisionedConcurrencyConfig',
                  'lambda:UpdateAlias',
                ],
                Resource: arn('lambda', 'function:qasite-*'),
              },
              {
                Effect: 'Allow',
                Action: ['cloudwatch:DescribeAlarms'],
                Resource: arn('cloudwatch', 'alarm:qasite-*'),
              },
            ],
          },
        },
      ],
    },
  };
  const alarms = ROLLBACK_ALARMS.filter((id) => id in resources);
  resources.CodeDeployDeploymentGroup = {
    Type: 'AWS::CodeDeploy::DeploymentGroup',
    Properties: {
      ApplicationName: { Ref: 'CodeDeployApplication' },
      ServiceRoleArn: { 'Fn::GetAtt': ['CodeDeployServiceRole', 'Arn'] },
      DeploymentConfigName: `CodeDeployDefault.Lambda${preference}`,
      DeploymentStyle: { DeploymentType: 'BLUE_GREEN', DeploymentOption: 'WITH_TRAFFIC_CONTROL' },
      AutoRollbackConfiguration: {
        Enabled: true,
        Events: alarms.length
          ? ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']
          : ['DEPLOYMENT_FAILURE'],
      },
      ...(alarms.length && {
        AlarmConfiguration: { Enabled: true, Alarms: alarms.map((id) => ({ Name: { Ref: id } })) },
      }),
    },
  };
  alias.UpdatePolicy = {
    CodeDeployLambdaAliasUpdate: {
      ApplicationName: { Ref: 'CodeDeployApplication' },
      DeploymentGroupName: { Ref: 'CodeDeployDeploymentGroup' },
    },
  };
};

module.exports = QasiteParams;
