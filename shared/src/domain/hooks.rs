//! Which Kajabi hooks this deployment needs, and what `ensure` changes to get
//! exactly one per needed event pointing at it.

/// The hook events Gatehouse reads (Kajabi's whole public list).
pub const KAJABI_HOOK_EVENTS: [&str; 6] = [
    "purchase",
    "payment_succeeded",
    "order_created",
    "form_submission",
    "tag_added",
    "tag_removed",
];

/// A hook as `ensure` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookRef<'a> {
    pub id: &'a str,
    pub event: &'a str,
    pub target_url: &'a str,
}

/// What `ensure` does: create these events' hooks, delete these hooks (by
/// id), and keep these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookPlan {
    pub create: Vec<String>,
    pub delete: Vec<String>,
    pub keep: Vec<String>,
}

/// Whether `url` points at this deployment's Kajabi endpoint (`endpoint`,
/// with or without a query).
pub fn points_at(url: &str, endpoint: &str) -> bool {
    url == endpoint
        || url
            .strip_prefix(endpoint)
            .is_some_and(|rest| rest.starts_with('?'))
}

/// One hook per needed event at `target` (the endpoint with its current
/// token): the first such hook is kept; every other hook pointing at the
/// endpoint (a duplicate, an old token, an event not needed) is deleted;
/// hooks pointing elsewhere are not ours and stay.
pub fn plan_hooks(existing: &[HookRef<'_>], target: &str, endpoint: &str) -> HookPlan {
    let mut plan = HookPlan::default();
    let mut covered: Vec<&str> = Vec::new();
    for hook in existing {
        if !points_at(hook.target_url, endpoint) {
            continue;
        }
        let needed = KAJABI_HOOK_EVENTS.contains(&hook.event);
        if needed && hook.target_url == target && !covered.contains(&hook.event) {
            covered.push(hook.event);
            plan.keep.push(hook.id.to_string());
        } else {
            plan.delete.push(hook.id.to_string());
        }
    }
    plan.create = KAJABI_HOOK_EVENTS
        .iter()
        .filter(|event| !covered.contains(event))
        .map(|event| event.to_string())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "https://api.example/webhooks/kajabi";
    const TARGET: &str = "https://api.example/webhooks/kajabi?token=new";

    fn hook<'a>(id: &'a str, event: &'a str, target_url: &'a str) -> HookRef<'a> {
        HookRef {
            id,
            event,
            target_url,
        }
    }

    #[test]
    fn nothing_there_creates_one_per_event() {
        let plan = plan_hooks(&[], TARGET, ENDPOINT);
        assert_eq!(plan.create, KAJABI_HOOK_EVENTS.map(String::from).to_vec());
        assert!(plan.delete.is_empty() && plan.keep.is_empty());
    }

    #[test]
    fn duplicates_old_tokens_and_unneeded_events_go_and_foreign_hooks_stay() {
        let existing = [
            hook("1", "purchase", TARGET),
            hook("2", "purchase", TARGET),
            hook(
                "3",
                "form_submission",
                "https://api.example/webhooks/kajabi?token=old",
            ),
            hook("4", "tag_added", "https://zapier.example/hooks/catch/1"),
            hook("5", "tag_removed", TARGET),
            hook("6", "something_new", TARGET),
            hook("7", "order_created", "https://api.example/webhooks/kajabiX"),
        ];
        let plan = plan_hooks(&existing, TARGET, ENDPOINT);
        assert_eq!(plan.keep, ["1", "5"]);
        assert_eq!(plan.delete, ["2", "3", "6"]);
        assert_eq!(
            plan.create,
            [
                "payment_succeeded",
                "order_created",
                "form_submission",
                "tag_added"
            ]
        );
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let first = plan_hooks(&[], TARGET, ENDPOINT);
        let ids: Vec<String> = (0..first.create.len()).map(|i| i.to_string()).collect();
        let after: Vec<HookRef<'_>> = first
            .create
            .iter()
            .zip(&ids)
            .map(|(event, id)| hook(id, event, TARGET))
            .collect();
        let second = plan_hooks(&after, TARGET, ENDPOINT);
        assert!(second.create.is_empty() && second.delete.is_empty());
        assert_eq!(second.keep.len(), KAJABI_HOOK_EVENTS.len());
    }
}
