//! Least privilege, enforced locally. moto does not enforce IAM, so the local
//! stack gives every function its own AWS clients, and an interceptor on them
//! checks each request against that function's policy in the template before
//! it is sent. A request the policy does not allow fails as it would in AWS,
//! and is kept in the [`CallLog`] for the tests.
//!
//! The evaluation follows IAM's rules for the services Gatehouse uses:
//! - `TransactWriteItems` is authorized per item, as `PutItem`, `UpdateItem`,
//!   `DeleteItem` or `ConditionCheckItem`; `TransactGetItems` as `GetItem`;
//! - a query or scan on an index needs the index ARN (`table/T/index/I`);
//! - SQS batch calls need the single action (`SendMessageBatch` is `SendMessage`);
//! - SES `SendEmail` needs the sending identity's ARN;
//! - Secrets Manager `GetSecretValue` needs the secret's full ARN (named or not);
//! - an explicit `Deny` wins over any `Allow`; no statement means denied.
//!
//! Statements with `NotAction`, `NotResource` or `Condition` are refused at
//! load time rather than evaluated wrongly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::template::{SamTemplate, TemplateError};

/// The account moto reports; only this module's ARNs use it, on both sides.
pub const LOCAL_ACCOUNT: &str = "123456789012";

/// What the template's `!Ref`, `!GetAtt` and `!Sub` resolve to locally.
#[derive(Debug, Clone)]
pub struct ArnContext {
    pub region: String,
    pub account: String,
    /// Logical id -> ARN, for `!GetAtt X.Arn`.
    pub arns: BTreeMap<String, String>,
    /// Parameter -> value, for `!Ref P` and `${P}`.
    pub parameters: BTreeMap<String, String>,
    /// Logical id -> what `!Ref` gives for that resource (a table's name, a queue's URL).
    pub refs: BTreeMap<String, String>,
    /// Secret name -> its ARN (with the random suffix Secrets Manager adds), for
    /// requests that name a secret rather than give its ARN.
    pub secret_arns: BTreeMap<String, String>,
}

impl ArnContext {
    pub fn new(region: &str) -> Self {
        Self {
            region: region.to_string(),
            account: LOCAL_ACCOUNT.to_string(),
            arns: BTreeMap::new(),
            parameters: BTreeMap::new(),
            refs: BTreeMap::new(),
            secret_arns: BTreeMap::new(),
        }
    }

    pub fn table_arn(&self, table: &str) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{table}",
            self.region, self.account
        )
    }

    pub fn queue_arn(&self, queue_name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{queue_name}", self.region, self.account)
    }

    pub fn identity_arn(&self, identity: &str) -> String {
        format!(
            "arn:aws:ses:{}:{}:identity/{identity}",
            self.region, self.account
        )
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Partition" => "aws".to_string(),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => self.account.clone(),
            _ => return None,
        })
    }

    fn variable(&self, name: &str) -> Result<String, TemplateError> {
        if let Some(v) = self.pseudo(name) {
            return Ok(v);
        }
        if let Some(id) = name.strip_suffix(".Arn") {
            if let Some(arn) = self.arns.get(id) {
                return Ok(arn.clone());
            }
        }
        self.parameters
            .get(name)
            .or_else(|| self.refs.get(name))
            .cloned()
            .ok_or_else(|| {
                TemplateError::Shape(format!("policy refers to {name}, which is not resolvable"))
            })
    }

    /// Resolves one policy string: plain, `!GetAtt`, `!Ref` or `!Sub`.
    pub fn resolve(&self, value: &Value) -> Result<String, TemplateError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Tagged(t) => {
                let inner = match &t.value {
                    Value::String(s) => s.as_str(),
                    _ => {
                        return Err(TemplateError::Shape(format!(
                            "policy uses {} with a non-string argument",
                            t.tag
                        )))
                    }
                };
                if t.tag == "!GetAtt" || t.tag == "!Ref" {
                    self.variable(inner)
                } else if t.tag == "!Sub" {
                    self.substitute(inner)
                } else {
                    Err(TemplateError::Shape(format!(
                        "policy uses {}, which the local IAM check does not evaluate",
                        t.tag
                    )))
                }
            }
            other => Err(TemplateError::Shape(format!(
                "policy value is not a string: {other:?}"
            ))),
        }
    }

    fn substitute(&self, text: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Shape(format!("unclosed ${{ in {text}")))?;
            out.push_str(&self.variable(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// One function's identity policy, resolved to ARNs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionPolicy {
    statements: Vec<Statement>,
}

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    }
}

impl FunctionPolicy {
    /// The inline policies of the function built from `binary`.
    pub fn of_function(
        template: &SamTemplate,
        binary: &str,
        ctx: &ArnContext,
    ) -> Result<Self, TemplateError> {
        let function = template
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| TemplateError::Shape(format!("no function builds {binary}")))?;
        let properties = template
            .raw
            .get("Resources")
            .and_then(|r| r.get(function.logical_id.as_str()))
            .and_then(|f| f.get("Properties"));
        let globals = template.raw.get("Globals").and_then(|g| g.get("Function"));
        // With either, `Policies` is not the role Lambda runs with.
        for key in ["Role", "PermissionsBoundary"] {
            if properties.and_then(|p| p.get(key)).is_some()
                || globals.and_then(|g| g.get(key)).is_some()
            {
                return Err(TemplateError::Shape(format!(
                    "{binary}: {key} is set, which the local IAM check does not evaluate"
                )));
            }
        }
        let policies = properties.and_then(|p| p.get("Policies"));
        Self::parse(policies, ctx).map_err(|e| TemplateError::Shape(format!("{binary}: {e}")))
    }

    /// `Policies:` as SAM takes it: a list of inline policy documents.
    pub fn parse(policies: Option<&Value>, ctx: &ArnContext) -> Result<Self, TemplateError> {
        let mut statements = Vec::new();
        for document in one_or_many(policies) {
            if !document.is_mapping() {
                return Err(TemplateError::Shape(format!(
                    "policy {document:?} is not an inline document (SAM policy templates and managed policies are not evaluated)"
                )));
            }
            if let Some(key) = document
                .as_mapping()
                .into_iter()
                .flat_map(|m| m.keys())
                .find(|k| !matches!(k.as_str(), Some("Version" | "Id" | "Statement")))
            {
                return Err(TemplateError::Shape(format!(
                    "policy has {key:?}, which is not part of an inline document (SAM policy templates are not evaluated)"
                )));
            }
            if document.get("Statement").is_none() {
                return Err(TemplateError::Shape(
                    "a policy document has no Statement".into(),
                ));
            }
            for statement in one_or_many(document.get("Statement")) {
                for unsupported in ["NotAction", "NotResource", "Condition", "NotPrincipal"] {
                    if statement.get(unsupported).is_some() {
                        return Err(TemplateError::Shape(format!(
                            "a statement uses {unsupported}, which the local IAM check does not evaluate"
                        )));
                    }
                }
                let allow = match statement.get("Effect").and_then(Value::as_str) {
                    Some("Allow") => true,
                    Some("Deny") => false,
                    other => {
                        return Err(TemplateError::Shape(format!(
                            "a statement has Effect {other:?}"
                        )))
                    }
                };
                let actions = one_or_many(statement.get("Action"))
                    .into_iter()
                    .map(|a| ctx.resolve(a))
                    .collect::<Result<Vec<_>, _>>()?;
                let resources = one_or_many(statement.get("Resource"))
                    .into_iter()
                    .map(|r| ctx.resolve(r))
                    .collect::<Result<Vec<_>, _>>()?;
                if actions.is_empty() || resources.is_empty() {
                    return Err(TemplateError::Shape(
                        "a statement has no Action or no Resource".into(),
                    ));
                }
                statements.push(Statement {
                    allow,
                    actions,
                    resources,
                });
            }
        }
        Ok(Self { statements })
    }

    /// IAM's answer for one action on one resource.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let matching = |s: &&Statement| {
            s.actions
                .iter()
                .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && s.resources.iter().any(|r| glob(r, resource))
        };
        let mut matched = self.statements.iter().filter(matching).peekable();
        matched.peek().is_some() && matched.all(|s| s.allow)
    }
}

/// IAM's wildcards: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        // `*` first: a `*` in the text is no literal match for a wildcard.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsService {
    DynamoDb,
    Sqs,
    Ses,
    SecretsManager,
}

/// One thing IAM authorizes: a request may need several (a transaction's items).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authorization {
    pub action: String,
    pub resource: String,
}

impl Authorization {
    fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
        }
    }

    /// The resource without an email address (SES identities), for logs.
    pub fn loggable_resource(&self) -> String {
        match self.resource.split_once(":identity/") {
            Some((head, identity)) if identity.contains('@') => format!("{head}:identity/<email>"),
            _ => self.resource.clone(),
        }
    }
}

/// What IAM authorizes for one request, from its operation and its JSON body.
pub fn authorizations(
    service: AwsService,
    operation: &str,
    body: &Json,
    ctx: &ArnContext,
) -> Vec<Authorization> {
    let text = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    match service {
        AwsService::DynamoDb => {
            let table = |v: &Json| ctx.table_arn(&text(v, "TableName").unwrap_or_default());
            let action = |op: &str| format!("dynamodb:{op}");
            match operation {
                "TransactWriteItems" | "TransactGetItems" => body
                    .get("TransactItems")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|item| item.as_object().into_iter().flatten())
                    .map(|(kind, inner)| {
                        let op = match kind.as_str() {
                            "Put" => "PutItem",
                            "Update" => "UpdateItem",
                            "Delete" => "DeleteItem",
                            "ConditionCheck" => "ConditionCheckItem",
                            "Get" => "GetItem",
                            other => other,
                        };
                        Authorization::new(action(op), table(inner))
                    })
                    .collect(),
                "BatchGetItem" | "BatchWriteItem" => body
                    .get("RequestItems")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| Authorization::new(action(operation), ctx.table_arn(name)))
                    .collect(),
                "Query" | "Scan" => {
                    let mut resource = table(body);
                    if let Some(index) = text(body, "IndexName") {
                        resource = format!("{resource}/index/{index}");
                    }
                    vec![Authorization::new(action(operation), resource)]
                }
                _ => vec![Authorization::new(action(operation), table(body))],
            }
        }
        AwsService::Sqs => {
            let queue = text(body, "QueueUrl")
                .and_then(|url| url.rsplit('/').next().map(str::to_string))
                .or_else(|| text(body, "QueueName"))
                .unwrap_or_default();
            let op = operation.strip_suffix("Batch").unwrap_or(operation);
            vec![Authorization::new(
                format!("sqs:{op}"),
                ctx.queue_arn(&queue),
            )]
        }
        AwsService::Ses => {
            let mut needed = Vec::new();
            if operation == "SendEmail" {
                let identity = text(body, "FromEmailAddressIdentityArn").unwrap_or_else(|| {
                    let from = text(body, "FromEmailAddress").unwrap_or_default();
                    let address = match (from.rfind('<'), from.rfind('>')) {
                        (Some(a), Some(b)) if a < b => from[a + 1..b].to_string(),
                        _ => from.trim().to_string(),
                    };
                    ctx.identity_arn(&address)
                });
                needed.push(Authorization::new("ses:SendEmail", identity));
                if let Some(set) = text(body, "ConfigurationSetName") {
                    needed.push(Authorization::new(
                        "ses:SendEmail",
                        format!(
                            "arn:aws:ses:{}:{}:configuration-set/{set}",
                            ctx.region, ctx.account
                        ),
                    ));
                }
            } else {
                needed.push(Authorization::new(format!("ses:{operation}"), "*"));
            }
            needed
        }
        // IAM checks the secret's full ARN, whether the request names it or gives the ARN.
        AwsService::SecretsManager => {
            let id = text(body, "SecretId").unwrap_or_default();
            let arn = if id.starts_with("arn:") {
                id
            } else {
                ctx.secret_arns.get(&id).cloned().unwrap_or_else(|| {
                    format!(
                        "arn:aws:secretsmanager:{}:{}:secret:{id}",
                        ctx.region, ctx.account
                    )
                })
            };
            vec![Authorization::new(
                format!("secretsmanager:{operation}"),
                arn,
            )]
        }
    }
}

/// SESv2 is a REST protocol: the operation is in the method and path.
fn ses_operation(method: &str, uri: &str) -> String {
    // The request's URI is absolute by the time it is signed.
    let path = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => uri,
    };
    match (method, path.split('?').next().unwrap_or(path)) {
        ("POST", "/v2/email/outbound-emails") => "SendEmail".to_string(),
        ("POST", "/v2/email/outbound-bulk-emails") => "SendBulkEmail".to_string(),
        ("GET", "/v2/email/account") => "GetAccount".to_string(),
        (m, p) => format!("Unrecognized({m} {p})"),
    }
}

/// One request a function made, as IAM judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCall {
    pub function: String,
    pub operation: String,
    pub needed: Vec<Authorization>,
    /// The authorizations the policy does not grant; empty when allowed.
    pub denied: Vec<Authorization>,
}

/// Every call checked in this stack, in order.
#[derive(Debug, Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<CheckedCall>>>,
}

impl CallLog {
    pub fn calls(&self) -> Vec<CheckedCall> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn denied(&self) -> Vec<CheckedCall> {
        self.calls()
            .into_iter()
            .filter(|c| !c.denied.is_empty())
            .collect()
    }

    fn push(&self, call: CheckedCall) {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("AccessDenied (local IAM check): {function} is not allowed {action} on {resource}")]
pub struct AccessDenied {
    function: String,
    action: String,
    resource: String,
}

/// The interceptor on one function's clients of one service.
#[derive(Debug, Clone)]
pub struct PolicyCheck {
    function: String,
    service: AwsService,
    policy: Arc<FunctionPolicy>,
    ctx: Arc<ArnContext>,
    log: CallLog,
}

impl PolicyCheck {
    pub fn new(
        function: &str,
        service: AwsService,
        policy: Arc<FunctionPolicy>,
        ctx: Arc<ArnContext>,
        log: CallLog,
    ) -> Self {
        Self {
            function: function.to_string(),
            service,
            policy,
            ctx,
            log,
        }
    }

    /// Judges one request and records it; `Err` when IAM would refuse it.
    pub fn check(&self, operation: &str, body: &Json) -> Result<(), AccessDenied> {
        let needed = authorizations(self.service, operation, body, &self.ctx);
        let denied: Vec<_> = needed
            .iter()
            .filter(|a| !self.policy.allows(&a.action, &a.resource))
            .cloned()
            .collect();
        let refusal = denied.first().map(|first| AccessDenied {
            function: self.function.clone(),
            action: first.action.clone(),
            resource: first.loggable_resource(),
        });
        self.log.push(CheckedCall {
            function: self.function.clone(),
            operation: operation.to_string(),
            needed,
            denied,
        });
        match refusal {
            Some(e) => {
                tracing::error!(error = %e, "denied by the function's policy in infra/template.yaml");
                Err(e)
            }
            None => Ok(()),
        }
    }
}

impl aws_sdk_dynamodb::config::Intercept for PolicyCheck {
    fn name(&self) -> &'static str {
        "PolicyCheck"
    }

    // After serialization, once per operation: retries are not counted twice.
    fn read_after_serialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let operation = match self.service {
            AwsService::Ses => ses_operation(request.method(), request.uri()),
            _ => request
                .headers()
                .get("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or("Unrecognized")
                .to_string(),
        };
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Json::Null);
        self.check(&operation, &body)?;
        Ok(())
    }
}

/// Per-function AWS clients with the function's policy enforced on each.
pub struct Enforcement {
    template: SamTemplate,
    ctx: Arc<ArnContext>,
    pub log: CallLog,
}

impl Enforcement {
    pub fn new(template: SamTemplate, ctx: ArnContext) -> Self {
        Self {
            template,
            ctx: Arc::new(ctx),
            log: CallLog::default(),
        }
    }

    pub fn context(&self) -> &ArnContext {
        &self.ctx
    }

    pub fn clients_for(
        &self,
        binary: &str,
        base: &gatehouse::aws::AwsClients,
    ) -> Result<gatehouse::aws::AwsClients, TemplateError> {
        let policy = Arc::new(FunctionPolicy::of_function(
            &self.template,
            binary,
            &self.ctx,
        )?);
        let check = |service| {
            PolicyCheck::new(
                binary,
                service,
                Arc::clone(&policy),
                Arc::clone(&self.ctx),
                self.log.clone(),
            )
        };
        Ok(gatehouse::aws::AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                base.dynamodb
                    .config()
                    .to_builder()
                    .interceptor(check(AwsService::DynamoDb))
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                base.sqs
                    .config()
                    .to_builder()
                    .interceptor(check(AwsService::Sqs))
                    .build(),
            ),
            ses: aws_sdk_sesv2::Client::from_conf(
                base.ses
                    .config()
                    .to_builder()
                    .interceptor(check(AwsService::Ses))
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                base.secrets
                    .config()
                    .to_builder()
                    .interceptor(check(AwsService::SecretsManager))
                    .build(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> (SamTemplate, ArnContext) {
        let template =
            SamTemplate::load(&crate::env::workspace_root().join("infra/template.yaml")).unwrap();
        let mut ctx = ArnContext::new("us-east-1");
        ctx.arns.insert("Table".into(), ctx.table_arn("gh"));
        ctx.arns
            .insert("EmailQueue".into(), ctx.queue_arn("gh-email"));
        ctx.arns
            .insert("EmailDLQ".into(), ctx.queue_arn("gh-email-dlq"));
        ctx.parameters
            .insert("FromEmail".into(), "noreply@gatehouse.example".into());
        let secret = |name: &str| {
            format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf")
        };
        ctx.parameters
            .insert("SessionKeysSecretArn".into(), secret("session-keys"));
        for (id, resource) in template.raw["Resources"].as_mapping().unwrap() {
            if resource["Type"] == "AWS::SecretsManager::Secret" {
                let id = id.as_str().unwrap().to_string();
                ctx.refs.insert(id.clone(), secret(&id));
            }
        }
        (template, ctx)
    }

    fn check(binary: &str, service: AwsService, op: &str, body: Json) -> Vec<Authorization> {
        let (template, ctx) = shipped();
        let policy = FunctionPolicy::of_function(&template, binary, &ctx).unwrap();
        let check = PolicyCheck::new(
            binary,
            service,
            Arc::new(policy),
            Arc::new(ctx),
            CallLog::default(),
        );
        let _ = check.check(op, &body);
        check.log.calls()[0].denied.clone()
    }

    #[test]
    fn every_function_policy_resolves() {
        let (template, ctx) = shipped();
        for function in &template.functions {
            FunctionPolicy::of_function(&template, &function.binary, &ctx)
                .unwrap_or_else(|e| panic!("{}: {e}", function.binary));
        }
    }

    #[test]
    fn login_may_read_an_item() {
        let denied = check(
            "account-login",
            AwsService::DynamoDb,
            "GetItem",
            json!({"TableName": "gh", "Key": {}}),
        );
        assert!(denied.is_empty(), "{denied:?}");
    }

    #[test]
    fn a_transaction_is_authorized_per_item() {
        let body = json!({"TransactItems": [
            {"Update": {"TableName": "gh"}},
            {"ConditionCheck": {"TableName": "gh"}},
            {"Delete": {"TableName": "gh"}},
        ]});
        let (_, ctx) = shipped();
        let needed = authorizations(AwsService::DynamoDb, "TransactWriteItems", &body, &ctx);
        let actions: Vec<_> = needed.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem"
            ]
        );
        // The roles function may check a condition in its revoke transaction,
        // and may not delete.
        let denied = check(
            "admin-roles",
            AwsService::DynamoDb,
            "TransactWriteItems",
            body,
        );
        assert_eq!(
            denied,
            vec![Authorization::new(
                "dynamodb:DeleteItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/gh"
            )]
        );
    }

    #[test]
    fn an_index_query_needs_the_index_arn() {
        let (_, ctx) = shipped();
        let policy = FunctionPolicy::parse(
            Some(&serde_yaml::from_str("- Statement:\n  - Effect: Allow\n    Action: dynamodb:Query\n    Resource: !GetAtt Table.Arn\n").unwrap()),
            &ctx,
        )
        .unwrap();
        let table = ctx.table_arn("gh");
        assert!(policy.allows("dynamodb:Query", &table));
        assert!(!policy.allows("dynamodb:Query", &format!("{table}/index/gsi1")));
        let denied = check(
            "outbox-sweeper",
            AwsService::DynamoDb,
            "Query",
            json!({"TableName": "gh", "IndexName": "gsi2"}),
        );
        assert_eq!(
            denied.len(),
            1,
            "only gsi1 is granted to the outbox sweeper"
        );
    }

    #[test]
    fn deny_wins_and_wildcards_match() {
        let (_, ctx) = shipped();
        let policy = FunctionPolicy::parse(
            Some(&serde_yaml::from_str(
                "- Statement:\n  - Effect: Allow\n    Action: dynamodb:*\n    Resource: '*'\n  - Effect: Deny\n    Action: dynamodb:DeleteItem\n    Resource: !Sub '${Table.Arn}'\n",
            ).unwrap()),
            &ctx,
        )
        .unwrap();
        assert!(policy.allows("dynamodb:GetItem", &ctx.table_arn("gh")));
        assert!(policy.allows("DynamoDB:getitem", &ctx.table_arn("other")));
        assert!(!policy.allows("dynamodb:DeleteItem", &ctx.table_arn("gh")));
        assert!(!FunctionPolicy::default().allows("dynamodb:GetItem", "*"));
    }

    #[test]
    fn sqs_batches_and_ses_identities() {
        let (_, ctx) = shipped();
        let send = authorizations(
            AwsService::Sqs,
            "SendMessageBatch",
            &json!({"QueueUrl": "http://127.0.0.1:5056/123456789012/gh-email"}),
            &ctx,
        );
        assert_eq!(
            send,
            vec![Authorization::new(
                "sqs:SendMessage",
                ctx.queue_arn("gh-email")
            )]
        );
        let denied = check(
            "email-sender",
            AwsService::Ses,
            "SendEmail",
            json!({"FromEmailAddress": "Gatehouse <noreply@gatehouse.example>"}),
        );
        assert!(denied.is_empty(), "{denied:?}");
        let denied = check(
            "email-sender",
            AwsService::Ses,
            "SendEmail",
            json!({"FromEmailAddress": "someone@else.example"}),
        );
        assert_eq!(
            denied[0].loggable_resource(),
            "arn:aws:ses:us-east-1:123456789012:identity/<email>"
        );
    }

    #[test]
    fn unsupported_policy_shapes_are_refused() {
        let (_, ctx) = shipped();
        for yaml in [
            "- AmazonDynamoDBFullAccess\n",
            "- Statement:\n  - Effect: Allow\n    NotAction: s3:*\n    Resource: '*'\n",
            "- Statement:\n  - Effect: Allow\n    Action: sqs:SendMessage\n    Resource: !GetAtt Missing.Arn\n",
        ] {
            let value: Value = serde_yaml::from_str(yaml).unwrap();
            assert!(FunctionPolicy::parse(Some(&value), &ctx).is_err(), "{yaml}");
        }
    }

    /// `!Ref` on a table is its name and on a queue its URL, as CloudFormation
    /// gives them: a policy that names either as its Resource grants nothing.
    #[test]
    fn a_ref_to_a_resource_is_not_its_arn() {
        let (_, mut ctx) = shipped();
        ctx.refs.insert("Table".into(), "gh".into());
        ctx.refs.insert(
            "EmailQueue".into(),
            "http://127.0.0.1:5056/123456789012/gh-email".into(),
        );
        let policy = FunctionPolicy::parse(
            Some(
                &serde_yaml::from_str(
                    "- Statement:
  - Effect: Allow
    Action: [dynamodb:GetItem, sqs:SendMessage]
    Resource: [!Ref Table, !Ref EmailQueue, !Sub '${Table}/index/gsi1']
",
                )
                .unwrap(),
            ),
            &ctx,
        )
        .unwrap();
        assert!(!policy.allows("dynamodb:GetItem", &ctx.table_arn("gh")));
        assert!(!policy.allows("sqs:SendMessage", &ctx.queue_arn("gh-email")));
    }

    #[test]
    fn a_role_or_boundary_is_refused() {
        let (template, ctx) = shipped();
        for key in ["Role", "PermissionsBoundary"] {
            let mut edited = template.clone();
            let function = edited.functions[0].clone();
            edited.raw["Resources"][function.logical_id.as_str()]["Properties"]
                .as_mapping_mut()
                .unwrap()
                .insert(key.into(), "arn:aws:iam::123456789012:role/x".into());
            let err = FunctionPolicy::of_function(&edited, &function.binary, &ctx).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    /// A function reads only the secrets its policy names, by ARN or by name.
    #[test]
    fn secrets_are_granted_per_function() {
        let (_, mut ctx) = shipped();
        let token_key = ctx.refs["SecretTokenSigningKey"].clone();
        let read = |binary: &str, id: &str, ctx: &ArnContext| {
            let (template, _) = shipped();
            let policy = FunctionPolicy::of_function(&template, binary, ctx).unwrap();
            authorizations(
                AwsService::SecretsManager,
                "GetSecretValue",
                &json!({ "SecretId": id }),
                ctx,
            )
            .iter()
            .all(|a| policy.allows(&a.action, &a.resource))
        };
        assert!(read("email-sender", &token_key, &ctx));
        assert!(!read("account-me", &token_key, &ctx));
        assert!(!read(
            "email-sender",
            &ctx.refs["SecretStripeApiKey"].clone(),
            &ctx
        ));
        // By name: IAM still checks the full ARN.
        ctx.secret_arns
            .insert("gh/TOKEN_SIGNING_KEY".into(), token_key.clone());
        assert!(read("email-sender", "gh/TOKEN_SIGNING_KEY", &ctx));
    }

    #[test]
    fn ses_operations_from_absolute_uris() {
        assert_eq!(
            ses_operation("POST", "http://127.0.0.1:5056/v2/email/outbound-emails"),
            "SendEmail"
        );
        assert_eq!(
            ses_operation("POST", "/v2/email/outbound-emails?x=1"),
            "SendEmail"
        );
        assert!(ses_operation(
            "DELETE",
            "https://email.us-east-1.amazonaws.com/v2/email/identities/a"
        )
        .starts_with("Unrecognized"));
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("table/gh", "table/gh/index/gsi1"));
        assert!(
            glob("a*b", "a*xb"),
            "a literal * in the text is matched by the wildcard"
        );
    }
}
