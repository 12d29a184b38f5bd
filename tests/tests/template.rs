//! The SAM template's promises, and that the local stack builds from it.

use std::path::Path;

use gatehouse_e2e::{endpoint, random_suffix};
use gatehouse_local::bootstrap::{bootstrap, ResourceNames};
use gatehouse_local::env::workspace_root;
use gatehouse_local::template::SamTemplate;
use serde_yaml::Value;

fn template() -> Value {
    serde_yaml::from_str(
        &std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap(),
    )
    .unwrap()
}

fn resources(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
        .collect()
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect()
}

/// Every string under a node, through CloudFormation tags.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out)
        }),
        Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

#[test]
fn no_wildcards_in_any_policy() {
    let t = template();
    let mut checked = 0;
    for (id, function) in of_type(&t, "AWS::Serverless::Function") {
        let policies = &function["Properties"]["Policies"];
        if policies.is_null() {
            // They call no AWS service: the public keys and the plans for
            // sale come from their environment and the embedded plans file.
            assert!(
                ["JwksFunction", "PlansListFunction", "AccountPagesFunction"]
                    .contains(&id.as_str()),
                "{id} has no policy of its own"
            );
            continue;
        }
        for statement in policies
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
        {
            for field in ["Action", "Resource"] {
                let mut values = Vec::new();
                strings(&statement[field], &mut values);
                assert!(!values.is_empty(), "{id} statement lacks {field}");
                for v in values {
                    assert!(
                        !v.contains('*') && !v.contains('?'),
                        "{id} has a wildcard in {field}: {v}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10);
}

/// No function's environment holds a secret: each secret setting is named by
/// `<NAME>_SECRET_ID`, and that function's policy grants reading exactly that
/// secret. Nothing under `Environment` resolves a secret at deploy time.
#[test]
fn no_environment_holds_a_secret() {
    let t = template();
    let mut environments = vec![("Globals".to_string(), &t["Globals"]["Function"])];
    environments.extend(
        of_type(&t, "AWS::Serverless::Function")
            .into_iter()
            .map(|(id, f)| (id, &f["Properties"])),
    );
    let mut secret_ids = 0;
    for (id, node) in environments {
        let variables = &node["Environment"]["Variables"];
        let mut values = Vec::new();
        strings(variables, &mut values);
        for value in values {
            assert!(
                !value.contains("resolve:secretsmanager") && !value.contains("resolve:ssm-secure"),
                "{id} resolves a secret into its environment: {value}"
            );
        }
        for (name, value) in variables.as_mapping().into_iter().flatten() {
            let name = name.as_str().unwrap();
            assert!(
                !gatehouse::config::SECRET_SETTINGS.contains(&name),
                "{id} holds the secret {name} in its environment"
            );
            if !name.ends_with("_SECRET_ID") {
                continue;
            }
            secret_ids += 1;
            let granted = node["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|p| p["Statement"].as_sequence().cloned().unwrap_or_default())
                .any(|statement| {
                    statement["Action"] == "secretsmanager:GetSecretValue"
                        && statement["Resource"]
                            .as_sequence()
                            .is_some_and(|r| r.contains(value))
                });
            assert!(granted, "{id} names {name} but may not read it");
        }
    }
    assert!(secret_ids >= 20, "{secret_ids}");
}

/// A stack deploys into an account that already has the sender identity:
/// the parameter skips creating it, and nothing else depends on it.
#[test]
fn the_sender_identity_can_be_reused() {
    let t = template();
    assert_eq!(t["Parameters"]["CreateSenderIdentity"]["Default"], "true");
    let identities = of_type(&t, "AWS::SES::EmailIdentity");
    assert_eq!(identities.len(), 1);
    let (id, identity) = &identities[0];
    assert_eq!(identity["Condition"], "CreatesSenderIdentity");
    assert!(!t["Conditions"]["CreatesSenderIdentity"].is_null());
    let mut everything_else = Vec::new();
    for (other, resource) in resources(&t) {
        if &other != id {
            strings(resource, &mut everything_else);
        }
    }
    strings(&t["Outputs"], &mut everything_else);
    assert!(
        !everything_else.iter().any(|s| s == id
            || s.starts_with(&format!("{id}."))
            || s.contains(&format!("${{{id}"))),
        "a resource refers to the optional {id}"
    );
}

/// A deploy-time value for a variable: a parameter's default or a sample of
/// the right shape, a resource's reference as some text.
fn deployed(t: &Value, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(tagged) if tagged.tag == "!Ref" => {
            let name = tagged.value.as_str().unwrap();
            let parameter = &t["Parameters"][name];
            match parameter.get("Default").and_then(Value::as_str) {
                Some(default) => default.to_string(),
                None if name.ends_with("Email") => "someone@example.com".into(),
                None if name.ends_with("Url") => "https://app.example".into(),
                None => format!("ref-{name}"),
            }
        }
        _ => "value".into(),
    }
}

/// Every function's settings load from exactly what the template gives it:
/// its variables, and the secrets they name as Secrets Manager returns them.
/// A setting one function needs and another lacks must not stop the other.
#[test]
fn every_function_loads_its_settings_from_its_template_environment() {
    let t = template();
    let sam = SamTemplate::load(&workspace_root().join("infra/template.yaml")).unwrap();
    for function in &sam.functions {
        let id = &function.binary;
        let mut given = std::collections::BTreeMap::new();
        for (name, value) in gatehouse_local::secrets::environment(&sam, id) {
            if let Some(setting) = name.strip_suffix("_SECRET_ID") {
                let sample = if setting == "TOKEN_SIGNING_KEY" {
                    "k".repeat(32)
                } else {
                    format!("sample-{setting}")
                };
                given.insert(setting.to_string(), sample);
            } else if !name.ends_with("_SECRET_VERSION") {
                given.insert(name, deployed(&t, &value));
            }
        }
        let settings = gatehouse::config::Settings::from_lookup(&|name| given.get(name).cloned())
            .unwrap_or_else(|e| panic!("{id} would not start: {e}"));
        assert_eq!(
            settings.token_signing_key.is_some(),
            given.contains_key("TOKEN_SIGNING_KEY"),
            "{id}"
        );
    }
    assert_eq!(sam.functions.len(), 39);
}

/// The alarms watch what members feel: webhooks turned away, events failed or
/// waiting, emails parked, the DLQ's oldest message. The metric names are the
/// ones the functions write (`metrics.rs` reads them back from a run).
#[test]
fn alarms_watch_the_metrics_the_functions_write() {
    let t = template();
    let mut watched = Vec::new();
    for (_, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let mut stats = vec![(p["Namespace"].clone(), p["MetricName"].clone())];
        for query in p["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &query["MetricStat"]["Metric"];
            stats.push((metric["Namespace"].clone(), metric["MetricName"].clone()));
        }
        for (namespace, name) in stats {
            if let (Some(namespace), Some(name)) = (namespace.as_str(), name.as_str()) {
                watched.push(format!("{namespace}/{name}"));
            }
        }
    }
    for needed in [
        "Gatehouse/unavailable",
        "Gatehouse/failed",
        "Gatehouse/pending",
        "Gatehouse/parked",
        "AWS/SQS/ApproximateAgeOfOldestMessage",
        "AWS/ApiGateway/5xx",
    ] {
        assert!(watched.iter().any(|w| w == needed), "no alarm on {needed}");
    }
    assert_eq!(of_type(&t, "AWS::CloudWatch::Dashboard").len(), 1);
}

/// The dashboard body is JSON once `!Sub` fills it in, and it shows the
/// counts the functions write, the completions' match rate included.
#[test]
fn the_dashboard_is_json_and_shows_the_completion_counts() {
    let t = template();
    let (_, dashboard) = of_type(&t, "AWS::CloudWatch::Dashboard").remove(0);
    let mut texts = Vec::new();
    strings(&dashboard["Properties"]["DashboardBody"], &mut texts);
    let mut body = texts.concat();
    while let Some(start) = body.find("${") {
        let end = start + body[start..].find('}').unwrap();
        body.replace_range(start..=end, "x");
    }
    let json: serde_json::Value = serde_json::from_str(&body).expect("dashboard JSON");
    let shown = json["widgets"].to_string();
    for metric in [
        "completions_received",
        "completions_awarded",
        "completions_duplicate",
        "completions_unmatched",
        "match rate",
    ] {
        assert!(shown.contains(metric), "the dashboard lacks {metric}");
    }
}

#[test]
fn one_function_per_crate() {
    let t = template();
    let functions = of_type(&t, "AWS::Serverless::Function");
    let mut binaries: Vec<String> = functions
        .iter()
        .map(|(id, f)| {
            assert_eq!(
                f["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda"),
                "{id}"
            );
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    binaries.sort();
    let mut crates: Vec<String> = std::fs::read_dir(workspace_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    crates.sort();
    assert_eq!(
        binaries, crates,
        "each function crate is one template function and vice versa"
    );
    for name in &crates {
        let manifest = std::fs::read_to_string(
            Path::new(&workspace_root())
                .join("functions")
                .join(name)
                .join("Cargo.toml"),
        )
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name}'s package and binary carry its name"
        );
    }
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn table_is_retained_with_pitr() {
    let t = template();
    let tables = of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1);
    let table = tables[0].1;
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(table["UpdateReplacePolicy"].as_str(), Some("Retain"));
    assert_eq!(
        table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
            .as_bool(),
        Some(true)
    );
}

#[test]
fn dlq_and_function_errors_have_alarms_and_every_function_has_log_retention() {
    let t = template();
    let dlq_alarm = of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .any(|(_, a)| {
            let mut values = Vec::new();
            strings(&a["Properties"]["Dimensions"], &mut values);
            values.iter().any(|v| v.starts_with("EmailDLQ."))
        });
    assert!(dlq_alarm, "an alarm watches the DLQ");
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    for (id, _) in of_type(&t, "AWS::Serverless::Function") {
        let watched = alarms.iter().any(|(_, a)| {
            let mut values = Vec::new();
            strings(&a["Properties"]["Dimensions"], &mut values);
            a["Properties"]["MetricName"].as_str() == Some("Errors") && values.contains(&id)
        });
        assert!(watched, "{id} has an errors alarm");
    }
    let logs = of_type(&t, "AWS::Logs::LogGroup");
    for (id, _) in of_type(&t, "AWS::Serverless::Function") {
        let group = logs.iter().find(|(_, g)| {
            let mut values = Vec::new();
            strings(&g["Properties"]["LogGroupName"], &mut values);
            values
                .iter()
                .any(|v| v == &format!("/aws/lambda/${{{id}}}"))
        });
        let (_, group) = group.unwrap_or_else(|| panic!("{id} has no explicit log group"));
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{id}'s log group has retention"
        );
    }
}

#[test]
fn secrets_are_noecho_parameters() {
    let t = template();
    for name in [
        "KajabiWebhookSecret",
        "KajabiUrlTokens",
        "StripeWebhookSecrets",
        "StripeSecretKey",
        "PaystackSecretKey",
        "TokenSigningKey",
    ] {
        assert_eq!(
            t["Parameters"][name]["NoEcho"].as_bool(),
            Some(true),
            "{name}"
        );
    }
}

#[tokio::test]
async fn changing_the_template_changes_the_local_table() {
    let mut t = template();
    let props = &mut t["Resources"]["Table"]["Properties"];
    props["KeySchema"][1]["AttributeName"] = Value::String("sort_key".into());
    for definition in props["AttributeDefinitions"].as_sequence_mut().unwrap() {
        if definition["AttributeName"].as_str() == Some("sk") {
            definition["AttributeName"] = Value::String("sort_key".into());
        }
    }
    props["GlobalSecondaryIndexes"][0]["IndexName"] = Value::String("by_something_else".into());
    let changed = SamTemplate::parse(&serde_yaml::to_string(&t).unwrap()).unwrap();

    let run = random_suffix();
    let clients = gatehouse::aws::AwsClients::for_endpoint(&endpoint(), "us-east-1").await;
    let names = ResourceNames {
        table: format!("gh-template-{run}"),
        queue: format!("gh-template-{run}-q"),
        dlq: format!("gh-template-{run}-dlq"),
        visibility_timeout_override: None,
    };
    let from = gatehouse::domain::Email::parse("noreply@gatehouse.example").unwrap();
    bootstrap(&clients, &changed, &names, &from).await.unwrap();
    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<&str> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(keys, vec!["pk", "sort_key"]);
    let mut indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        vec!["by_something_else", "gsi2", "gsi3", "gsi4", "gsi5"]
    );
    // The users index projects profile fields but never the password hash.
    let users = table
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some("gsi3"))
        .unwrap();
    let projected = users.projection().unwrap().non_key_attributes();
    assert!(projected.contains(&"email".to_string()));
    assert!(!projected.contains(&"password_hash".to_string()));

    // And the shipped template gives the shipped layout, with the DLQ redrive.
    let shipped = SamTemplate::load(&workspace_root().join("infra/template.yaml")).unwrap();
    let names2 = ResourceNames {
        table: format!("gh-template2-{run}"),
        queue: format!("gh-template2-{run}-q"),
        dlq: format!("gh-template2-{run}-dlq"),
        visibility_timeout_override: None,
    };
    let made = bootstrap(&clients, &shipped, &names2, &from).await.unwrap();
    let table = clients
        .dynamodb
        .describe_table()
        .table_name(&names2.table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        table
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect::<Vec<_>>(),
        vec!["pk", "sk"]
    );
    let attrs = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&made.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive = attrs
        .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .unwrap();
    assert!(redrive.contains(&names2.dlq), "{redrive}");
    let redrive: serde_json::Value = serde_json::from_str(redrive).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
}

#[test]
fn every_admin_route_is_iam_authorized_with_time_for_providers() {
    let t = template();
    assert_eq!(
        t["Resources"]["HttpApi"]["Properties"]["Auth"]["EnableIamAuthorizer"].as_bool(),
        Some(true)
    );
    let mut admin_routes = 0;
    for (id, function) in of_type(&t, "AWS::Serverless::Function") {
        let events = function["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        for (_, event) in events {
            let path = event["Properties"]["Path"].as_str().unwrap_or_default();
            let authorizer = event["Properties"]["Auth"]["Authorizer"].as_str();
            if path.starts_with("/admin/") {
                admin_routes += 1;
                assert_eq!(authorizer, Some("AWS_IAM"), "{id} {path}");
                assert_eq!(function["Properties"]["Timeout"].as_u64(), Some(29), "{id}");
                assert!(
                    !function["Properties"]["Environment"]["Variables"]["ADMIN_PRINCIPALS"]
                        .is_null(),
                    "{id} gets the allowlist"
                );
            } else {
                assert_eq!(authorizer, None, "{id} {path} stays public");
            }
        }
    }
    assert_eq!(admin_routes, 19, "one function per admin action");
}
