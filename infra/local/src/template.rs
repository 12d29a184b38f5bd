//! Reads the SAM template: the table, queues, sender identity, and each
//! function's routes, queue and schedule. CloudFormation tags (`!Ref`,
//! `!GetAtt`, `!Sub`) arrive as tagged YAML values.

use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template: {0}")]
    Io(#[from] std::io::Error),
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template: {0}")]
    Shape(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    pub name: String,
    /// HASH or RANGE
    pub key_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: String,
    pub keys: Vec<KeyElement>,
    pub projection: String,
    /// `NonKeyAttributes` of an INCLUDE projection.
    pub projected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (name, type) pairs: S, N or B.
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<KeyElement>,
    pub global_indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    /// (DLQ logical id, maxReceiveCount)
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// May hold `{name}` segments, as API Gateway route keys do.
    pub path: String,
    /// `Auth: {Authorizer: AWS_IAM}`: SigV4-signed requests only.
    pub iam_auth: bool,
}

impl Route {
    /// The path parameters when `method` and `path` (as received) match.
    pub fn matches(
        &self,
        method: &str,
        path: &str,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut params = std::collections::BTreeMap::new();
        let mut wanted = self.path.split('/');
        let mut given = path.split('/');
        loop {
            match (wanted.next(), given.next()) {
                (None, None) => return Some(params),
                (Some(w), Some(g)) => {
                    if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                        if g.is_empty() {
                            return None;
                        }
                        let value = percent_encoding::percent_decode_str(g)
                            .decode_utf8()
                            .ok()?
                            .into_owned();
                        params.insert(name.to_string(), value);
                    } else if w != g {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary, which is also the crate name.
    pub binary: String,
    pub routes: Vec<Route>,
    /// Logical id of the SQS queue feeding it.
    pub queue: Option<String>,
    pub schedule: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SamTemplate {
    pub raw: Value,
    pub table: TableSpec,
    pub queues: Vec<QueueSpec>,
    pub has_sender_identity: bool,
    pub functions: Vec<FunctionSpec>,
}

fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn str_of(value: Option<&Value>) -> Option<String> {
    match untag(value?) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `!GetAtt X.Arn` or `Fn::GetAtt: [X, Arn]` -> X
fn get_att_target(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag == "!GetAtt" => {
            str_of(Some(&t.value)).map(|s| s.split('.').next().unwrap_or_default().to_string())
        }
        Value::Mapping(m) => m.get("Fn::GetAtt").and_then(|v| match v {
            Value::Sequence(parts) => str_of(parts.first()),
            other => {
                str_of(Some(other)).map(|s| s.split('.').next().unwrap_or_default().to_string())
            }
        }),
        _ => None,
    }
}

fn key_elements(value: Option<&Value>) -> Vec<KeyElement> {
    value
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .filter_map(|k| {
                    Some(KeyElement {
                        name: str_of(k.get("AttributeName"))?,
                        key_type: str_of(k.get("KeyType"))?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl SamTemplate {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let raw: Value = serde_yaml::from_str(text)?;
        let resources = raw
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| TemplateError::Shape("no Resources".into()))?;
        let mut table = None;
        let mut queues = Vec::new();
        let mut functions = Vec::new();
        let mut has_sender_identity = false;
        for (id, resource) in resources {
            let id = str_of(Some(id)).unwrap_or_default();
            let props = resource.get("Properties");
            match str_of(resource.get("Type")).as_deref() {
                Some("AWS::DynamoDB::Table") => {
                    let p = props
                        .ok_or_else(|| TemplateError::Shape(format!("{id} has no Properties")))?;
                    if table.is_some() {
                        return Err(TemplateError::Shape("more than one table".into()));
                    }
                    table = Some(TableSpec {
                        logical_id: id.clone(),
                        attributes: p
                            .get("AttributeDefinitions")
                            .and_then(Value::as_sequence)
                            .map(|defs| {
                                defs.iter()
                                    .filter_map(|d| {
                                        Some((
                                            str_of(d.get("AttributeName"))?,
                                            str_of(d.get("AttributeType"))?,
                                        ))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        keys: key_elements(p.get("KeySchema")),
                        global_indexes: p
                            .get("GlobalSecondaryIndexes")
                            .and_then(Value::as_sequence)
                            .map(|idx| {
                                idx.iter()
                                    .filter_map(|i| {
                                        Some(IndexSpec {
                                            name: str_of(i.get("IndexName"))?,
                                            keys: key_elements(i.get("KeySchema")),
                                            projection: i
                                                .get("Projection")
                                                .and_then(|p| str_of(p.get("ProjectionType")))
                                                .unwrap_or_else(|| "ALL".into()),
                                            projected: i
                                                .get("Projection")
                                                .and_then(|p| p.get("NonKeyAttributes"))
                                                .and_then(Value::as_sequence)
                                                .map(|names| {
                                                    names
                                                        .iter()
                                                        .filter_map(|n| str_of(Some(n)))
                                                        .collect()
                                                })
                                                .unwrap_or_default(),
                                        })
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                        ttl_attribute: p
                            .get("TimeToLiveSpecification")
                            .and_then(|t| str_of(t.get("AttributeName"))),
                    });
                }
                Some("AWS::SQS::Queue") => {
                    let redrive = props.and_then(|p| p.get("RedrivePolicy")).and_then(|r| {
                        let target = get_att_target(r.get("deadLetterTargetArn")?)?;
                        let max = str_of(r.get("maxReceiveCount"))?.parse().ok()?;
                        Some((target, max))
                    });
                    queues.push(QueueSpec {
                        logical_id: id.clone(),
                        visibility_timeout: props
                            .and_then(|p| str_of(p.get("VisibilityTimeout")))
                            .and_then(|v| v.parse().ok()),
                        redrive,
                    });
                }
                Some("AWS::SES::EmailIdentity") => has_sender_identity = true,
                Some("AWS::Serverless::Function") => {
                    let binary = resource
                        .get("Metadata")
                        .and_then(|m| m.get("BuildProperties"))
                        .and_then(|b| str_of(b.get("Binary")))
                        .ok_or_else(|| {
                            TemplateError::Shape(format!(
                                "{id} has no Metadata.BuildProperties.Binary"
                            ))
                        })?;
                    let mut spec = FunctionSpec {
                        logical_id: id.clone(),
                        binary,
                        routes: Vec::new(),
                        queue: None,
                        schedule: None,
                    };
                    if let Some(events) = props
                        .and_then(|p| p.get("Events"))
                        .and_then(Value::as_mapping)
                    {
                        for event in events.values() {
                            let ep = event.get("Properties");
                            match str_of(event.get("Type")).as_deref() {
                                Some("HttpApi") | Some("Api") => {
                                    if let (Some(path), Some(method)) = (
                                        ep.and_then(|p| str_of(p.get("Path"))),
                                        ep.and_then(|p| str_of(p.get("Method"))),
                                    ) {
                                        let iam_auth = str_of(
                                            ep.and_then(|p| p.get("Auth"))
                                                .and_then(|a| a.get("Authorizer")),
                                        )
                                        .as_deref()
                                            == Some("AWS_IAM");
                                        spec.routes.push(Route {
                                            method: method.to_ascii_uppercase(),
                                            path,
                                            iam_auth,
                                        });
                                    }
                                }
                                Some("SQS") => {
                                    spec.queue =
                                        ep.and_then(|p| p.get("Queue")).and_then(get_att_target)
                                }
                                Some("Schedule") | Some("ScheduleV2") => {
                                    spec.schedule = ep.and_then(|p| {
                                        str_of(p.get("Schedule").or(p.get("ScheduleExpression")))
                                    })
                                }
                                _ => {}
                            }
                        }
                    }
                    functions.push(spec);
                }
                _ => {}
            }
        }
        Ok(Self {
            table: table.ok_or_else(|| TemplateError::Shape("no AWS::DynamoDB::Table".into()))?,
            queues,
            has_sender_identity,
            functions,
            raw,
        })
    }

    /// The main queue (the one with a redrive policy) and its DLQ.
    pub fn email_queues(&self) -> Result<(&QueueSpec, &QueueSpec), TemplateError> {
        let main = self
            .queues
            .iter()
            .find(|q| q.redrive.is_some())
            .ok_or_else(|| TemplateError::Shape("no queue with a RedrivePolicy".into()))?;
        let dlq_id = main
            .redrive
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let dlq = self
            .queues
            .iter()
            .find(|q| q.logical_id == dlq_id)
            .ok_or_else(|| TemplateError::Shape(format!("DLQ {dlq_id} is not defined")))?;
        Ok((main, dlq))
    }
}

/// `rate(5 minutes)` -> seconds.
pub fn rate_seconds(expr: &str) -> Option<u64> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let per = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(n * per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_templated_paths() {
        let route = Route {
            method: "GET".into(),
            path: "/admin/users/{id}".into(),
            iam_auth: true,
        };
        let params = route.matches("GET", "/admin/users/usr_1").unwrap();
        assert_eq!(params["id"], "usr_1");
        let params = route.matches("get", "/admin/users/a%20b").unwrap();
        assert_eq!(params["id"], "a b");
        assert!(route.matches("POST", "/admin/users/usr_1").is_none());
        assert!(route.matches("GET", "/admin/users/").is_none());
        assert!(route.matches("GET", "/admin/users").is_none());
        assert!(route.matches("GET", "/admin/users/usr_1/extra").is_none());
        let exact = Route {
            method: "POST".into(),
            path: "/webhooks/kajabi".into(),
            iam_auth: false,
        };
        assert!(exact
            .matches("POST", "/webhooks/kajabi")
            .unwrap()
            .is_empty());
        assert!(exact.matches("POST", "/webhooks/kajabi/").is_none());
    }

    #[test]
    fn parses_the_shipped_template() {
        let t =
            SamTemplate::load(&crate::env::workspace_root().join("infra/template.yaml")).unwrap();
        assert_eq!(t.table.keys[0].name, "pk");
        assert_eq!(t.table.global_indexes[0].name, "gsi1");
        let (main, dlq) = t.email_queues().unwrap();
        assert_eq!(main.redrive.as_ref().unwrap().0, dlq.logical_id);
        assert!(t.has_sender_identity);
        let kajabi = t
            .functions
            .iter()
            .find(|f| f.binary == "kajabi-webhook")
            .unwrap();
        assert_eq!(
            kajabi.routes,
            vec![Route {
                method: "POST".into(),
                path: "/webhooks/kajabi".into(),
                iam_auth: false,
            }]
        );
        let sender = t
            .functions
            .iter()
            .find(|f| f.binary == "email-sender")
            .unwrap();
        assert_eq!(sender.queue.as_deref(), Some(main.logical_id.as_str()));
        let sweeper = t
            .functions
            .iter()
            .find(|f| f.binary == "outbox-sweeper")
            .unwrap();
        assert_eq!(
            sweeper.schedule.as_deref().and_then(rate_seconds),
            Some(300)
        );
    }

    #[test]
    fn rates() {
        assert_eq!(rate_seconds("rate(1 minute)"), Some(60));
        assert_eq!(rate_seconds("rate(2 hours)"), Some(7200));
        assert_eq!(rate_seconds("cron(0 * * * ? *)"), None);
    }
}
