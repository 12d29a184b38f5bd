//! Creates the table, queues and sender identity on moto from the template's
//! resource definitions. Idempotent: existing resources are kept.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use gatehouse::aws::AwsClients;
use gatehouse::domain::Email;

use crate::template::{KeyElement, SamTemplate, TableSpec};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("template: {0}")]
    Template(#[from] crate::template::TemplateError),
    #[error("{what}: {detail}")]
    Aws { what: &'static str, detail: String },
}

fn aws<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> BootstrapError {
    move |e| BootstrapError::Aws {
        what,
        detail: format!("{e:?}"),
    }
}

#[derive(Debug, Clone)]
pub struct ResourceNames {
    pub table: String,
    pub queue: String,
    pub dlq: String,
    /// Tests shorten the template's visibility timeout so redrive happens in seconds.
    pub visibility_timeout_override: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
}

fn key_schema(keys: &[KeyElement]) -> Result<Vec<KeySchemaElement>, BootstrapError> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(aws("key schema"))
        })
        .collect()
}

/// The CreateTable request the template describes.
pub fn create_table_request(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    name: &str,
) -> Result<
    aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
    BootstrapError,
> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&spec.keys)?));
    for (attr, ty) in &spec.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(ty.as_str()))
                .build()
                .map_err(aws("attribute definition"))?,
        );
    }
    for index in &spec.global_indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.keys)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection.as_str()))
                        .set_non_key_attributes(
                            (!index.projected.is_empty()).then(|| index.projected.clone()),
                        )
                        .build(),
                )
                .build()
                .map_err(aws("global secondary index"))?,
        );
    }
    Ok(request)
}

pub async fn bootstrap(
    clients: &AwsClients,
    template: &SamTemplate,
    names: &ResourceNames,
    from_email: &Email,
) -> Result<Bootstrapped, BootstrapError> {
    // Table
    match create_table_request(&clients.dynamodb, &template.table, &names.table)?
        .send()
        .await
    {
        Ok(_) => {
            if let Some(ttl) = &template.table.ttl_attribute {
                // moto records TTL but never enforces it; the code never relies on it.
                let _ = clients
                    .dynamodb
                    .update_time_to_live()
                    .table_name(&names.table)
                    .time_to_live_specification(
                        TimeToLiveSpecification::builder()
                            .attribute_name(ttl)
                            .enabled(true)
                            .build()
                            .map_err(aws("ttl"))?,
                    )
                    .send()
                    .await;
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(aws("create table")(e)),
    }

    // Queues: the DLQ first, then the main queue redriving to it.
    let (main, dlq) = template.email_queues()?;
    let dlq_url = clients
        .sqs
        .create_queue()
        .queue_name(&names.dlq)
        .send()
        .await
        .map_err(aws("create DLQ"))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws("DLQ attributes"))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let max_receive = main.redrive.as_ref().map(|(_, n)| *n).unwrap_or(5);
    let mut create = clients.sqs.create_queue().queue_name(&names.queue).attributes(
        QueueAttributeName::RedrivePolicy,
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()}).to_string(),
    );
    if let Some(visibility) = names
        .visibility_timeout_override
        .or(main.visibility_timeout)
    {
        create = create.attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        );
    }
    let queue_url = create
        .send()
        .await
        .map_err(aws("create queue"))?
        .queue_url
        .unwrap_or_default();
    let _ = dlq;

    // SES sender identity (moto verifies it at once).
    if template.has_sender_identity {
        match clients
            .ses
            .create_email_identity()
            .email_identity(from_email.as_str())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) => {}
            Err(e) => return Err(aws("create SES identity")(e)),
        }
    }
    Ok(Bootstrapped {
        table: names.table.clone(),
        queue_url,
        dlq_url,
    })
}
