'use strict';
// serverless.yml's parameters, checked at package time (so `serverless package` and `deploy`
// refuse, with a message, a combination AWS would refuse halfway through a deploy), and what no
// variable can express:
// - the template's Conditions compare package-time parameters, so each is constant: they are
//   settled here (a resource whose condition is false is left out, an Fn::If becomes its
//   branch), and the template deployed and linted holds exactly what is in effect;
// - no reserved concurrency when the parameter is empty or 0;
// - the duration alarm's threshold, from the function's timeout.

const DURATION_ALARM_SHARE = 0.8; // p99 at 80% of the timeout

class QasiteParams {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = {
      'before:package:initialize': () => this.check(),
      'after:aws:package:finalize:mergeCustomProviderResources': () => this.finish(),
    };
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
    const region = service.provider.region;
    if (topic && !new RegExp(`^arn:aws[\\w-]*:sns:${region}:\\d{12}:[\\w-]+$`).test(topic)) {
      this.fail(`alarmTopicArn must be an SNS topic in the stack's region (${region})`);
    }
    const reserved = param('reservedConcurrency').trim();
    if (!/^\d*$/.test(reserved)) {
      this.fail(`reservedConcurrency=${reserved}: expected a whole number, or empty for none`);
    }
    if (Number(reserved) > 0) service.functions.web.reservedConcurrency = Number(reserved);
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

    const alarm = template.Resources.FunctionDurationAlarm;
    if (alarm) {
      const timeout = template.Resources.WebLambdaFunction.Properties.Timeout;
      alarm.Properties.Threshold = Math.round(timeout * 1000 * DURATION_ALARM_SHARE);
    }
  }
}

module.exports = QasiteParams;
