//! Command-line parsing and output for each admin action.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use crate::table::{cell, render};
use crate::{Answer, CliError};

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub const USAGE: &str =
    "usage: gatehouse-admin [--local | --endpoint URL] [--region R] [--json] <command>

commands:
  users list [--status S] [--plan P] [--role R] [--permission P] [--provider P]
             [--active true|false] [--email-prefix X] [--limit N] [--cursor C] [--all]
  users show <user id>
  users verify <user id>                  compare with the provider's view
  users sync <user id>                    apply the provider's view
  users resend-setup-email <user id>
  users grant <user id> <role> --reason TEXT
  users revoke <user id> <role> --reason TEXT
  users points <user id> --delta N --reason TEXT
                                          add (or, negative, deduct) points; never below 0
  completions import FILE.csv [--dry-run]  email,course,completion_date[,points] rows through the
                                          webhook rule, 2,000 a request; a re-import awards
                                          nothing twice
  completions list [--status unmatched|dismissed] [--limit N] [--cursor C] [--all]
                                          completions no member's email matched, kept for review
  completions link <id> --user <user id>  award one (and every other waiting on its email) to
                                          that member, once per course
  completions dismiss <id> --reason TEXT  close one: no later account or link applies it
  kajabi hooks list                       the Kajabi site's hooks (tokens masked)
  kajabi hooks create <event>             a hook for one event at this deployment
  kajabi hooks delete <hook id>
  kajabi hooks ensure                     exactly one hook per event Gatehouse reads, at this
                                          deployment's current URL; stale ones deleted
  payments list [--provider P] [--status S] [--user ID] [--from RFC3339] [--to RFC3339]
                [--limit N] [--cursor C] [--all]
                                          payments newest first, amounts in their currency
  events list [--provider P] [--type T] [--status S] [--user ID] [--from RFC3339] [--to RFC3339]
              [--limit N] [--cursor C] [--all]
  events show <provider:event id | ref>
  events replay <provider:event id | ref> [--attach <user id>]
                                          re-run a failed, pending or unmatched event; --attach
                                          maps a pending event's provider customer (an unmatched
                                          completion's email) to that member first

Mutating commands send a fresh Idempotency-Key; pass --idempotency-key K to retry one safely.

--local signs with the dev credentials in infra/local.env and calls GATEHOUSE_ADDR.
Otherwise credentials come from the standard AWS chain and the endpoint from --endpoint
or GATEHOUSE_API_URL.";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalOptions {
    pub local: bool,
    pub json: bool,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    UsersList {
        query: Vec<(String, String)>,
        all: bool,
    },
    UsersShow {
        id: String,
    },
    EventsList {
        query: Vec<(String, String)>,
        all: bool,
    },
    PaymentsList {
        query: Vec<(String, String)>,
        all: bool,
    },
    EventsShow {
        reference: String,
    },
    UsersVerify {
        id: String,
    },
    UsersSync {
        id: String,
    },
    UsersResend {
        id: String,
    },
    UsersRole {
        id: String,
        grant: bool,
        role: String,
        reason: String,
    },
    UsersPoints {
        id: String,
        delta: i64,
        reason: String,
    },
    /// Sent in pieces by `crate::import_completions`, not as one call.
    CompletionsImport {
        file: String,
        dry_run: bool,
    },
    EventsReplay {
        reference: String,
        attach: Option<String>,
    },
    CompletionsList {
        query: Vec<(String, String)>,
        all: bool,
    },
    KajabiHooksList,
    KajabiHookCreate {
        event: String,
    },
    KajabiHookDelete {
        id: String,
    },
    KajabiHooksEnsure,
    CompletionsLink {
        reference: String,
        user: String,
    },
    CompletionsDismiss {
        reference: String,
        reason: String,
    },
}

/// One HTTP call a command makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub mutating: bool,
}

fn usage(detail: impl Into<String>) -> CliError {
    CliError::Usage(format!("{}\n\n{USAGE}", detail.into()))
}

/// `--flag value` pairs mapped to query parameters; `--all` is a switch.
fn list_flags(
    args: &[String],
    mapping: &[(&str, &str)],
) -> Result<(Vec<(String, String)>, bool), CliError> {
    let mut query = Vec::new();
    let mut all = false;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--all" {
            all = true;
            i += 1;
            continue;
        }
        let Some((_, param)) = mapping.iter().find(|(f, _)| *f == flag) else {
            return Err(usage(format!("unknown option {flag}")));
        };
        let value = args
            .get(i + 1)
            .ok_or_else(|| usage(format!("{flag} needs a value")))?;
        query.push((param.to_string(), value.clone()));
        i += 2;
    }
    Ok((query, all))
}

const USER_FLAGS: &[(&str, &str)] = &[
    ("--status", "subscription_status"),
    ("--plan", "plan"),
    ("--role", "role"),
    ("--permission", "permission"),
    ("--provider", "auth_provider"),
    ("--active", "is_active"),
    ("--email-prefix", "email_prefix"),
    ("--limit", "limit"),
    ("--cursor", "cursor"),
];

const EVENT_FLAGS: &[(&str, &str)] = &[
    ("--provider", "provider"),
    ("--type", "type"),
    ("--status", "status"),
    ("--user", "user"),
    ("--from", "from"),
    ("--to", "to"),
    ("--limit", "limit"),
    ("--cursor", "cursor"),
];

const PAYMENT_FLAGS: &[(&str, &str)] = &[
    ("--provider", "provider"),
    ("--status", "status"),
    ("--user", "user"),
    ("--from", "from"),
    ("--to", "to"),
    ("--limit", "limit"),
    ("--cursor", "cursor"),
];

const COMPLETION_FLAGS: &[(&str, &str)] = &[
    ("--status", "status"),
    ("--limit", "limit"),
    ("--cursor", "cursor"),
];

pub fn parse(args: &[String]) -> Result<(GlobalOptions, Command), CliError> {
    let mut options = GlobalOptions::default();
    let mut rest: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--local" => options.local = true,
            "--json" => options.json = true,
            "--endpoint" | "--region" | "--idempotency-key" => {
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| usage(format!("{} needs a value", args[i])))?
                    .clone();
                match args[i].as_str() {
                    "--endpoint" => options.endpoint = Some(value),
                    "--region" => options.region = Some(value),
                    _ => options.idempotency_key = Some(value),
                }
                i += 1;
            }
            "-h" | "--help" => return Err(CliError::Usage(USAGE.into())),
            other => rest.push(other.to_string()),
        }
        i += 1;
    }
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    let command = match words.as_slice() {
        ["users", "list", ..] => {
            let (query, all) = list_flags(&rest[2..], USER_FLAGS)?;
            Command::UsersList { query, all }
        }
        ["users", "show", id] => Command::UsersShow { id: id.to_string() },
        ["events", "list", ..] => {
            let (query, all) = list_flags(&rest[2..], EVENT_FLAGS)?;
            Command::EventsList { query, all }
        }
        ["payments", "list", ..] => {
            let (query, all) = list_flags(&rest[2..], PAYMENT_FLAGS)?;
            Command::PaymentsList { query, all }
        }
        ["events", "show", key] => Command::EventsShow {
            reference: key.to_string(),
        },
        ["events", "replay", key] => Command::EventsReplay {
            reference: key.to_string(),
            attach: None,
        },
        ["events", "replay", key, "--attach", user] => Command::EventsReplay {
            reference: key.to_string(),
            attach: Some(user.to_string()),
        },
        ["users", "verify", id] => Command::UsersVerify { id: id.to_string() },
        ["users", "sync", id] => Command::UsersSync { id: id.to_string() },
        ["users", "resend-setup-email", id] => Command::UsersResend { id: id.to_string() },
        ["users", verb @ ("grant" | "revoke"), id, role, "--reason", reason] => {
            Command::UsersRole {
                id: id.to_string(),
                grant: *verb == "grant",
                role: role.to_string(),
                reason: reason.to_string(),
            }
        }
        ["users", "points", id, "--delta", delta, "--reason", reason] => Command::UsersPoints {
            id: id.to_string(),
            delta: delta
                .parse()
                .map_err(|_| usage(format!("--delta takes a whole number, not `{delta}`")))?,
            reason: reason.to_string(),
        },
        ["completions", "import", file] => Command::CompletionsImport {
            file: file.to_string(),
            dry_run: false,
        },
        ["completions", "import", file, "--dry-run"]
        | ["completions", "import", "--dry-run", file] => Command::CompletionsImport {
            file: file.to_string(),
            dry_run: true,
        },
        ["kajabi", "hooks", "list"] => Command::KajabiHooksList,
        ["kajabi", "hooks", "create", event] => Command::KajabiHookCreate {
            event: event.to_string(),
        },
        ["kajabi", "hooks", "delete", id] => Command::KajabiHookDelete { id: id.to_string() },
        ["kajabi", "hooks", "ensure"] => Command::KajabiHooksEnsure,
        ["kajabi", ..] => {
            return Err(usage(
                "kajabi hooks takes list, create <event>, delete <hook id> or ensure",
            ))
        }
        ["completions", "list", ..] => {
            let (query, all) = list_flags(&rest[2..], COMPLETION_FLAGS)?;
            Command::CompletionsList { query, all }
        }
        ["completions", "link", id, "--user", user] => Command::CompletionsLink {
            reference: id.to_string(),
            user: user.to_string(),
        },
        ["completions", "dismiss", id, "--reason", reason] => Command::CompletionsDismiss {
            reference: id.to_string(),
            reason: reason.to_string(),
        },
        ["completions", ..] => {
            return Err(usage(
                "completions takes list, link <id> --user <user id>, dismiss <id> --reason TEXT, or import FILE.csv [--dry-run]",
            ))
        }
        ["users", "points", ..] => {
            return Err(usage("points takes <user id> --delta N --reason TEXT"))
        }
        ["users", "grant" | "revoke", ..] => {
            return Err(usage(
                "grant and revoke take <user id> <role> --reason TEXT",
            ))
        }
        [] => return Err(usage("no command given")),
        _ => return Err(usage(format!("unknown command: {}", rest.join(" ")))),
    };
    Ok((options, command))
}

fn query_string(query: &[(String, String)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, QUERY),
                utf8_percent_encode(v, QUERY)
            )
        })
        .collect();
    format!("?{}", pairs.join("&"))
}

/// `provider:event id` becomes the URL-safe ref; a ref passes through.
pub fn event_ref(reference: &str) -> String {
    if reference.contains(':') {
        URL_SAFE_NO_PAD.encode(reference)
    } else {
        reference.to_string()
    }
}

fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, QUERY).to_string()
}

impl Command {
    /// The first call; list commands with `--all` add the cursor and call again.
    pub fn call(&self, cursor: Option<&str>) -> Call {
        let with_cursor = |query: &[(String, String)]| {
            let mut q: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| cursor.is_none() || k != "cursor")
                .cloned()
                .collect();
            if let Some(c) = cursor {
                q.push(("cursor".into(), c.into()));
            }
            query_string(&q)
        };
        match self {
            Command::UsersList { query, .. } => Call {
                method: "GET",
                path: format!("/admin/users{}", with_cursor(query)),
                body: None,
                mutating: false,
            },
            Command::UsersShow { id } => Call {
                method: "GET",
                path: format!("/admin/users/{}", segment(id)),
                body: None,
                mutating: false,
            },
            Command::EventsList { query, .. } => Call {
                method: "GET",
                path: format!("/admin/events{}", with_cursor(query)),
                body: None,
                mutating: false,
            },
            Command::PaymentsList { query, .. } => Call {
                method: "GET",
                path: format!("/admin/payments{}", with_cursor(query)),
                body: None,
                mutating: false,
            },
            Command::EventsShow { reference } => Call {
                method: "GET",
                path: format!("/admin/events/{}", segment(&event_ref(reference))),
                body: None,
                mutating: false,
            },
            Command::EventsReplay { reference, attach } => Call {
                method: "POST",
                path: format!("/admin/events/{}/replay", segment(&event_ref(reference))),
                body: attach
                    .as_ref()
                    .map(|user| serde_json::json!({ "user_id": user })),
                mutating: true,
            },
            Command::UsersVerify { id } => Call {
                method: "GET",
                path: format!("/admin/users/{}/verify-subscription", segment(id)),
                body: None,
                mutating: false,
            },
            Command::UsersSync { id } => Call {
                method: "POST",
                path: format!("/admin/users/{}/sync-subscription", segment(id)),
                body: None,
                mutating: true,
            },
            Command::UsersResend { id } => Call {
                method: "POST",
                path: format!("/admin/users/{}/resend-setup-email", segment(id)),
                body: None,
                mutating: true,
            },
            Command::UsersRole {
                id,
                grant,
                role,
                reason,
            } => Call {
                method: "POST",
                path: format!("/admin/users/{}/roles", segment(id)),
                body: Some(if *grant {
                    serde_json::json!({"grant": role, "reason": reason})
                } else {
                    serde_json::json!({"revoke": role, "reason": reason})
                }),
                mutating: true,
            },
            Command::CompletionsImport { dry_run, .. } => Call {
                method: "POST",
                path: format!("/admin/completions/import?dry_run={dry_run}"),
                body: None,
                mutating: true,
            },
            Command::KajabiHooksList => Call {
                method: "GET",
                path: "/admin/kajabi/hooks".into(),
                body: None,
                mutating: false,
            },
            Command::KajabiHookCreate { event } => Call {
                method: "POST",
                path: "/admin/kajabi/hooks".into(),
                body: Some(serde_json::json!({ "event": event })),
                mutating: true,
            },
            Command::KajabiHookDelete { id } => Call {
                method: "DELETE",
                path: format!("/admin/kajabi/hooks/{}", segment(id)),
                body: None,
                mutating: true,
            },
            Command::KajabiHooksEnsure => Call {
                method: "POST",
                path: "/admin/kajabi/hooks/ensure".into(),
                body: None,
                mutating: true,
            },
            Command::CompletionsList { query, .. } => Call {
                method: "GET",
                path: format!("/admin/completions{}", with_cursor(query)),
                body: None,
                mutating: false,
            },
            Command::CompletionsLink { reference, user } => Call {
                method: "POST",
                path: format!("/admin/completions/{}/link", segment(&event_ref(reference))),
                body: Some(serde_json::json!({ "user_id": user })),
                mutating: true,
            },
            Command::CompletionsDismiss { reference, reason } => Call {
                method: "POST",
                path: format!(
                    "/admin/completions/{}/dismiss",
                    segment(&event_ref(reference))
                ),
                body: Some(serde_json::json!({ "reason": reason })),
                mutating: true,
            },
            Command::UsersPoints { id, delta, reason } => Call {
                method: "POST",
                path: format!("/admin/users/{}/points", segment(id)),
                body: Some(serde_json::json!({"delta": delta, "reason": reason})),
                mutating: true,
            },
        }
    }

    pub fn follows_cursors(&self) -> bool {
        matches!(
            self,
            Command::UsersList { all: true, .. }
                | Command::EventsList { all: true, .. }
                | Command::PaymentsList { all: true, .. }
                | Command::CompletionsList { all: true, .. }
        )
    }

    /// A readable rendering of a successful answer.
    pub fn render(&self, body: &Value) -> String {
        match self {
            Command::UsersList { .. } => list_table(
                body,
                &[
                    "user_id",
                    "email",
                    "is_active",
                    "auth_provider",
                    "partner",
                    "created_at",
                ],
                &[
                    "user id", "email", "active", "provider", "partner", "created",
                ],
            ),
            Command::EventsList { .. } => list_table(
                body,
                &["received_at", "key", "type", "status", "user_id", "ref"],
                &["received", "event", "type", "status", "user", "ref"],
            ),
            Command::PaymentsList { .. } => list_table(
                body,
                &[
                    "created_at",
                    "provider",
                    "reference",
                    "status",
                    "amount",
                    "plan",
                    "user_id",
                ],
                &[
                    "created", "provider", "reference", "status", "amount", "plan", "user",
                ],
            ),
            Command::UsersShow { .. } => render_user(body),
            Command::EventsShow { .. } => render_event(body),
            Command::UsersVerify { .. } => render_verify(body),
            Command::UsersSync { .. } => {
                let rows: Vec<Vec<String>> = body["results"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|r| {
                                ["provider", "plan", "old_status", "new_status", "applied"]
                                    .iter()
                                    .map(|f| cell(&r[*f]))
                                    .collect()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                render(&["provider", "plan", "old", "new", "applied"], &rows)
            }
            Command::UsersResend { .. } => format!(
                "sent a new setup link to {} (job {})",
                cell(&body["user_id"]),
                cell(&body["job_id"])
            ),
            Command::UsersRole { .. } => format!(
                "{} {} for {}: roles now {}",
                cell(&body["change"]),
                cell(&body["role"]),
                cell(&body["user_id"]),
                cell(&body["roles_after"])
            ),
            Command::CompletionsImport { .. } => format!(
                "{}{} rows: {} awarded, {} already awarded, {} unmatched, {} invalid, {} not applied{}",
                if body["dry_run"] == true {
                    "dry run, "
                } else {
                    ""
                },
                cell(&body["rows"]),
                cell(&body["awarded"]["count"]),
                cell(&body["already_awarded"]["count"]),
                cell(&body["unmatched"]["count"]),
                cell(&body["invalid"]["count"]),
                cell(&body["not_applied"]["count"]),
                body["invalid"]["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| format!("\n  line {}: {}", cell(&r["row"]), cell(&r["reason"])))
                    .collect::<String>()
            ),
            Command::UsersPoints { .. } => format!(
                "{} points for {}: {} -> {}",
                cell(&body["delta"]),
                cell(&body["user_id"]),
                cell(&body["points_before"]),
                cell(&body["points_after"])
            ),
            Command::CompletionsList { .. } => {
                let rows: Vec<Vec<String>> = body["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        vec![
                            cell(&c["received_at"]),
                            cell(&c["email"]),
                            cell(&c["course"]["name"]),
                            cell(&c["completed_on"]),
                            cell(&c["status"]),
                            cell(&c["id"]),
                        ]
                    })
                    .collect();
                let mut out = render(
                    &["received", "email", "course", "completed", "status", "id"],
                    &rows,
                );
                match body["next_cursor"].as_str() {
                    Some(next) => out.push_str(&format!("\n\nmore: --cursor {next}")),
                    None => out.push_str(&format!("\n\n{} completion(s)", rows.len())),
                }
                out
            }
            Command::KajabiHooksList => {
                let rows: Vec<Vec<String>> = body["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|h| {
                        vec![
                            cell(&h["id"]),
                            cell(&h["event"]),
                            cell(&h["points_here"]),
                            cell(&h["current_token"]),
                            cell(&h["target_url"]),
                        ]
                    })
                    .collect();
                render(&["id", "event", "here", "current", "target (token masked)"], &rows)
            }
            Command::KajabiHookCreate { .. } => format!(
                "{} hook {} for {}",
                cell(&body["status"]),
                cell(&body["hook"]["id"]),
                cell(&body["hook"]["event"])
            ),
            Command::KajabiHookDelete { .. } => format!("deleted hook {}", cell(&body["id"])),
            Command::KajabiHooksEnsure => {
                let events = |key: &str| -> String {
                    body[key]
                        .as_array()
                        .map(|hooks| {
                            hooks
                                .iter()
                                .map(|h| format!("{} ({})", cell(&h["event"]), cell(&h["id"])))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "none".into())
                };
                format!(
                    "{}: created {}; deleted {}; kept {}",
                    cell(&body["status"]),
                    events("created"),
                    events("deleted"),
                    events("kept")
                )
            }
            Command::CompletionsLink { .. } => format!(
                "{}: {} -> {}",
                cell(&body["event"]),
                cell(&body["old_status"]),
                cell(&body["new_status"])
            ),
            Command::CompletionsDismiss { .. } => format!(
                "{}: dismissed ({})",
                cell(&body["event"]),
                cell(&body["reason"])
            ),
            Command::EventsReplay { .. } => {
                let mut line = format!(
                    "{}: {} -> {}",
                    cell(&body["event"]),
                    cell(&body["old_status"]),
                    cell(&body["new_status"])
                );
                if let Some(reason) = body["reason"].as_str() {
                    line.push_str(&format!(" ({reason})"));
                }
                line
            }
        }
    }
}

fn list_table(body: &Value, fields: &[&str], headers: &[&str]) -> String {
    let rows: Vec<Vec<String>> = body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| fields.iter().map(|f| cell(&item[*f])).collect())
                .collect()
        })
        .unwrap_or_default();
    let mut out = render(headers, &rows);
    match body["next_cursor"].as_str() {
        Some(next) => out.push_str(&format!("\n\nmore: --cursor {next}")),
        None => out.push_str(&format!("\n\n{} row(s)", rows.len())),
    }
    out
}

fn render_user(body: &Value) -> String {
    let p = &body["profile"];
    let mut out = vec![
        format!("user      {}", cell(&p["user_id"])),
        format!("email     {}", cell(&p["email"])),
        format!(
            "name      {} {}",
            cell(&p["first_name"]),
            cell(&p["last_name"])
        ),
        format!("active    {}", cell(&p["is_active"])),
        format!("provider  {}", cell(&p["auth_provider"])),
        format!("partner   {}", cell(&p["partner"])),
        format!("premium   {}", cell(&body["premium"])),
        format!("points    {}", cell(&body["points"])),
        format!("roles     {}", cell(&body["roles"])),
        format!("perms     {}", cell(&body["permissions"])),
        String::new(),
    ];
    let subs: Vec<Vec<String>> = body["subscriptions"]
        .as_array()
        .map(|subs| {
            subs.iter()
                .map(|s| {
                    ["provider", "plan", "state", "access", "access_until"]
                        .iter()
                        .map(|f| cell(&s[*f]))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    out.push(render(
        &["provider", "plan", "state", "access", "access until"],
        &subs,
    ));
    out.push(String::new());
    out.push(list_table(
        &serde_json::json!({"items": body["events"]}),
        &["received_at", "key", "type", "status"],
        &["received", "event", "type", "status"],
    ));
    out.push(String::new());
    out.push(list_table(
        &serde_json::json!({"items": body["payments"]}),
        &["created_at", "provider", "status", "amount", "plan"],
        &["created", "payment", "status", "amount", "plan"],
    ));
    let unsent = body["unsent_emails"].as_array().map_or(0, Vec::len);
    out.push(format!("\nunsent emails: {unsent}"));
    out.join("\n")
}

fn render_verify(body: &Value) -> String {
    let rows: Vec<Vec<String>> = body["subscriptions"]
        .as_array()
        .map(|subs| {
            subs.iter()
                .map(|s| {
                    vec![
                        cell(&s["provider"]),
                        cell(&s["plan"]),
                        cell(&s["database_status"]["state"]),
                        cell(&s["provider_status"]["status"]),
                        cell(&s["mismatch"]),
                        cell(&s["differences"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = render(
        &[
            "provider",
            "plan",
            "stored",
            "provider says",
            "mismatch",
            "differences",
        ],
        &rows,
    );
    if let Some(action) = body["recommended_action"].as_str() {
        out.push_str(&format!("\n\nrecommended: {action}"));
    }
    out
}

fn render_event(body: &Value) -> String {
    let mut out = vec![];
    for field in [
        "key",
        "ref",
        "type",
        "status",
        "reason",
        "user_id",
        "received_at",
        "body_sha256",
    ] {
        out.push(format!("{field:<12}{}", cell(&body[field])));
    }
    out.push(String::new());
    out.push(serde_json::to_string_pretty(&body["payload"]["body"]).unwrap_or_default());
    out.join("\n")
}

/// Exit status and message for an error answer.
pub fn describe_error(answer: &Answer) -> String {
    let detail = answer.body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| answer.body.to_string());
    format!("error {}: {detail}", answer.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &str) -> Vec<String> {
        raw.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_commands_and_builds_paths() {
        let (opts, cmd) = parse(&args(
            "--local --json users list --status active --email-prefix a+b@x --limit 2",
        ))
        .unwrap();
        assert!(opts.local && opts.json);
        assert_eq!(
            cmd.call(None).path,
            "/admin/users?subscription_status=active&email_prefix=a%2Bb%40x&limit=2"
        );
        assert_eq!(
            cmd.call(Some("abc")).path,
            "/admin/users?subscription_status=active&email_prefix=a%2Bb%40x&limit=2&cursor=abc"
        );
        let (_, cmd) = parse(&args("events show stripe:evt_1")).unwrap();
        assert_eq!(
            cmd.call(None).path,
            format!("/admin/events/{}", URL_SAFE_NO_PAD.encode("stripe:evt_1"))
        );
        let (_, cmd) = parse(&args("users grant usr_1 admin --reason runs-it")).unwrap();
        let call = cmd.call(None);
        assert_eq!(call.path, "/admin/users/usr_1/roles");
        assert!(call.mutating);
        assert_eq!(call.body.unwrap()["grant"], "admin");
        assert!(
            parse(&args("users grant usr_1 admin")).is_err(),
            "reason is required"
        );
        let (opts, cmd) = parse(&args("--idempotency-key k1 events replay stripe:evt_9")).unwrap();
        assert_eq!(opts.idempotency_key.as_deref(), Some("k1"));
        assert!(cmd.call(None).path.ends_with("/replay"));
        assert!(cmd.call(None).body.is_none());
        let (_, cmd) = parse(&args("events replay stripe:evt_9 --attach usr_1")).unwrap();
        assert_eq!(cmd.call(None).body.unwrap()["user_id"], "usr_1");
        let (_, cmd) = parse(&args("users points usr_1 --delta -5 --reason correction")).unwrap();
        let call = cmd.call(None);
        assert_eq!(call.path, "/admin/users/usr_1/points");
        assert!(call.mutating);
        assert_eq!(
            call.body.unwrap(),
            serde_json::json!({"delta": -5, "reason": "correction"})
        );
        assert!(parse(&args("users points usr_1 --delta five --reason x")).is_err());
        assert!(parse(&args("users points usr_1 --delta 5")).is_err());
        let (_, cmd) = parse(&args("completions list --status dismissed --all")).unwrap();
        assert_eq!(cmd.call(None).path, "/admin/completions?status=dismissed");
        assert!(cmd.follows_cursors());
        let (_, cmd) = parse(&args("completions link kajabi:evt_1 --user usr_1")).unwrap();
        let call = cmd.call(None);
        assert_eq!(
            call.path,
            format!(
                "/admin/completions/{}/link",
                URL_SAFE_NO_PAD.encode("kajabi:evt_1")
            )
        );
        assert!(call.mutating);
        assert_eq!(call.body.unwrap()["user_id"], "usr_1");
        let (_, cmd) = parse(&args("completions dismiss a2FqYWJpOmV2dF8x --reason spam")).unwrap();
        let call = cmd.call(None);
        assert_eq!(call.path, "/admin/completions/a2FqYWJpOmV2dF8x/dismiss");
        assert_eq!(call.body.unwrap()["reason"], "spam");
        assert!(parse(&args("completions dismiss kajabi:evt_1")).is_err());
        assert!(parse(&args("completions link kajabi:evt_1")).is_err());
        let (_, cmd) = parse(&args("kajabi hooks delete 42")).unwrap();
        let call = cmd.call(None);
        assert_eq!(
            (call.method, call.path.as_str()),
            ("DELETE", "/admin/kajabi/hooks/42")
        );
        assert!(call.mutating);
        let (_, cmd) = parse(&args("kajabi hooks create tag_added")).unwrap();
        assert_eq!(cmd.call(None).body.unwrap()["event"], "tag_added");
        assert!(parse(&args("kajabi hooks")).is_err());
        assert!(parse(&args("users list --colour red")).is_err());
        assert!(parse(&args("users list --limit")).is_err());
        assert!(parse(&args("nothing")).is_err());
    }
}
