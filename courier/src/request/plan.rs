//! What a request asks for: the `updates pull` (and `prod-targets pull`) arguments turned
//! into a [`Plan`] — operations, key id, threshold, and which production and wave targets
//! the request carries (fioctl's selection) — refusing incomplete or contradictory
//! arguments before any request is sent.

use shared::bundle;
use shared::keys::KeyId;

use crate::cli::{OpArg, PullArgs};
use crate::error::{CourierError, Result};

/// Which documents a request must carry, besides the transaction and the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocPlan {
    /// Production targets: `None` = none, `Some(empty)` = all tags, `Some(list)` = these tags.
    pub tags: Option<Vec<String>>,
    /// Whether a 404 for the production targets is an error.
    pub tags_required: bool,
    /// Wave targets: `None` = none, `Some(empty)` = all active waves, `Some(list)` = these.
    pub waves: Option<Vec<String>>,
    /// Whether a 404 for the wave targets is an error.
    pub waves_required: bool,
}

/// A planned request: operations and documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Operations requested (documents-dependent ones are completed after fetching).
    pub ops: Vec<OpArg>,
    /// Key id for deletions.
    pub keyid: Option<KeyId>,
    /// Threshold for set-threshold.
    pub threshold: Option<u64>,
    /// Documents.
    pub docs: DocPlan,
}

/// Turns the `pull` arguments into a plan, refusing incomplete ones before any request.
pub fn plan_pull(args: &PullArgs) -> Result<Plan> {
    let mut ops = args.ops.clone();
    if ops.is_empty() {
        ops.push(OpArg::SignRoot);
    }
    let mut seen = Vec::new();
    ops.retain(|o| {
        let new = !seen.contains(o);
        seen.push(*o);
        new
    });
    let needs_keyid = ops
        .iter()
        .any(|o| matches!(o, OpArg::DeleteRootKey | OpArg::DeleteTargetsKey));
    let needs_threshold = ops
        .iter()
        .any(|o| matches!(o, OpArg::SetRootThreshold | OpArg::SetTargetsThreshold));
    let keyid = match (&args.keyid, needs_keyid) {
        (Some(k), true) => {
            Some(KeyId::parse(k.trim()).map_err(|e| CourierError::Usage(format!("--keyid: {e}")))?)
        }
        (None, true) => {
            return Err(CourierError::Usage(
                "delete-root-key/delete-targets-key need --keyid".into(),
            ))
        }
        (Some(_), false) => {
            return Err(CourierError::Usage(
                "--keyid is only used with delete-*-key".into(),
            ))
        }
        (None, false) => None,
    };
    if ops
        .iter()
        .filter(|o| matches!(o, OpArg::DeleteRootKey | OpArg::DeleteTargetsKey))
        .count()
        > 1
    {
        return Err(CourierError::Usage(
            "give one delete operation per request (one --keyid)".into(),
        ));
    }
    if ops.contains(&OpArg::SetRootThreshold) && ops.contains(&OpArg::SetTargetsThreshold) {
        return Err(CourierError::Usage(
            "give one set-*-threshold operation per request (one --threshold)".into(),
        ));
    }
    let threshold = match (args.threshold, needs_threshold) {
        (Some(0), true) => {
            return Err(CourierError::Usage("--threshold must be at least 1".into()))
        }
        (Some(n), true) => {
            if ops.contains(&OpArg::SetTargetsThreshold) && n < 2 {
                return Err(CourierError::Usage(format!(
                    "Threshold for TUF Targets must be greater than 2: {n} (production targets need the online key plus at least one offline key)"
                )));
            }
            Some(n)
        }
        (None, true) => {
            return Err(CourierError::Usage(
                "set-*-threshold needs --threshold N".into(),
            ))
        }
        (Some(_), false) => {
            return Err(CourierError::Usage(
                "--threshold is only used with set-*-threshold".into(),
            ))
        }
        (None, false) => None,
    };
    for name in args.tags.iter().chain(&args.waves) {
        bundle::validate_doc_name(name).map_err(CourierError::Usage)?;
    }
    let mut docs = DocPlan::default();
    if ops.contains(&OpArg::RotateTargets) || ops.contains(&OpArg::AddTargetsKey) {
        // fioctl: all production tags and all active waves; 404 = none. A new targets key
        // signs them too (the signer's add-offline-key does): the first offline targets key
        // must, or production targets miss the production threshold and apply is refused.
        docs.tags = Some(Vec::new());
        docs.waves = Some(Vec::new());
    }
    if ops.contains(&OpArg::SignProdTargets) {
        // fioctl's sign-prod-targets selection; 404 is an error there.
        let (tags_given, waves_given) = (!args.tags.is_empty(), !args.waves.is_empty());
        if tags_given || !waves_given {
            docs.tags = Some(args.tags.clone());
            docs.tags_required = true;
        }
        if waves_given || !tags_given {
            docs.waves = Some(args.waves.clone());
            docs.waves_required = waves_given;
        }
    } else if !args.tags.is_empty() || !args.waves.is_empty() {
        return Err(CourierError::Usage(
            "--tags and --waves are only used with --op sign-prod-targets".into(),
        ));
    }
    Ok(Plan {
        ops,
        keyid,
        threshold,
        docs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args(ops: &[OpArg]) -> PullArgs {
        PullArgs {
            bundle: PathBuf::from("x"),
            ops: ops.to_vec(),
            keyid: None,
            threshold: None,
            tags: vec![],
            waves: vec![],
            txid: None,
        }
    }

    #[test]
    fn pull_plans_follow_fioctl_selection() {
        let p = plan_pull(&args(&[])).unwrap();
        assert_eq!(p.ops, vec![OpArg::SignRoot]);
        assert_eq!(p.docs, DocPlan::default());

        let p = plan_pull(&args(&[OpArg::RotateTargets])).unwrap();
        assert_eq!(p.docs.tags, Some(vec![]));
        assert_eq!(p.docs.waves, Some(vec![]));
        assert!(!p.docs.tags_required);
        let p = plan_pull(&args(&[OpArg::AddTargetsKey])).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec![]), Some(vec![]))
        );
        assert!(!p.docs.tags_required && !p.docs.waves_required);
        assert_eq!(
            plan_pull(&args(&[OpArg::AddRootKey])).unwrap().docs,
            DocPlan::default()
        );

        // sign-prod-targets: neither flag → all tags and all waves; --tags only → tags only.
        let p = plan_pull(&args(&[OpArg::SignProdTargets])).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec![]), Some(vec![]))
        );
        let mut a = args(&[OpArg::SignProdTargets]);
        a.tags = vec!["prod".into()];
        let p = plan_pull(&a).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (Some(vec!["prod".into()]), None)
        );
        a.tags = vec![];
        a.waves = vec!["w1".into()];
        let p = plan_pull(&a).unwrap();
        assert_eq!(
            (p.docs.tags.clone(), p.docs.waves.clone()),
            (None, Some(vec!["w1".into()]))
        );
        assert!(p.docs.waves_required);

        // Refusals before any request.
        assert!(plan_pull(&args(&[OpArg::DeleteRootKey])).is_err());
        let mut a = args(&[OpArg::SetTargetsThreshold]);
        a.threshold = Some(1);
        assert!(plan_pull(&a).is_err());
        a.threshold = Some(2);
        assert_eq!(plan_pull(&a).unwrap().threshold, Some(2));
        let mut a = args(&[OpArg::SignRoot]);
        a.tags = vec!["prod".into()];
        assert!(plan_pull(&a).is_err());
        let mut a = args(&[OpArg::SignProdTargets]);
        a.tags = vec!["../etc".into()];
        assert!(plan_pull(&a).is_err());
        let mut a = args(&[OpArg::DeleteTargetsKey]);
        a.keyid = Some("nothex".into());
        assert!(plan_pull(&a).is_err());
        // Duplicates collapse.
        assert_eq!(
            plan_pull(&args(&[OpArg::SignRoot, OpArg::SignRoot]))
                .unwrap()
                .ops,
            vec![OpArg::SignRoot]
        );
    }
}
