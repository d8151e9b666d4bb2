//! One function per Factory API endpoint the courier uses, with fioctl's paths (see
//! `foundries-api.md` §4): the root updates transaction, roots, production and wave targets,
//! CI targets and waves.
//!
//! Each function builds the path (names escaped), sends through [`Client::send`] (GETs
//! retried, state-changing requests sent once) and decodes the answer into
//! [`super::types`]. Where the API answers 404 for "none", the function returns `None`.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use shared::bundle::Upload;
use shared::keys::Signature;
use shared::transaction::ParsedTransaction;

use super::split::{self, SplitError};
use super::transport::{escape, ApiError, Client};
use super::types::{
    InitResponse, RolloutOptions, RolloutResult, Wave, WaveAnswer, WaveCreate, WaveList, WaveSign,
};

/// A map of document name → document as served (`prod-targets/`, `wave-targets/`,
/// `targets/`).
pub type RawDocs = BTreeMap<String, Box<RawValue>>;

impl Client {
    fn repo(&self) -> String {
        format!("/ota/repo/{}/api/v1/user_repo", self.factory())
    }

    fn factories(&self) -> String {
        format!("/ota/factories/{}", self.factory())
    }

    /// `GET R/root.json[?production=1]`: the current CI (or production) root, as served.
    pub fn root(&self, prod: bool) -> Result<Vec<u8>, ApiError> {
        let path = format!(
            "{}/root.json{}",
            self.repo(),
            if prod { "?production=1" } else { "" }
        );
        Ok(self.get(&path)?.body.to_vec())
    }

    /// `GET R/{N}.root.json[?production=1]`: root version `n`, or `None` on 404.
    pub fn root_version(&self, n: u64, prod: bool) -> Result<Option<Vec<u8>>, ApiError> {
        let path = format!(
            "{}/{n}.root.json{}",
            self.repo(),
            if prod { "?production=1" } else { "" }
        );
        Ok(self.get_optional(&path)?.map(|r| r.body.to_vec()))
    }

    /// `GET R/root/updates`: the transaction as received, with its roots parsed under
    /// fioctl's rules ([`ParsedTransaction::from_json`]); an answer that breaks them is an
    /// [`ApiError::Decode`] naming the rule.
    pub fn updates(&self) -> Result<ParsedTransaction, ApiError> {
        let path = format!("{}/root/updates", self.repo());
        let resp = self.get(&path)?;
        ParsedTransaction::from_json(resp.body.to_vec())
            .map_err(|e| self.undecodable("GET", &path, e.to_string()))
    }

    /// `POST R/root/updates`: starts a transaction.
    pub fn init(
        &self,
        message: &str,
        first_time: bool,
        shortcut: bool,
    ) -> Result<InitResponse, ApiError> {
        let path = format!("{}/root/updates", self.repo());
        let body =
            serde_json::json!({"message": message, "first-time": first_time, "shortcut": shortcut});
        let resp = self.send_json(Method::POST, &path, &body)?;
        InitResponse::parse(&resp.body).map_err(|detail| self.undecodable("POST", &path, detail))
    }

    /// `PUT R/root/updates` with the signed roots and targets signatures (sent once, never
    /// retried).
    pub fn put_updates(&self, upload: &Upload) -> Result<(), ApiError> {
        let path = format!("{}/root/updates", self.repo());
        self.send_json(Method::PUT, &path, upload).map(|_| ())
    }

    /// `POST R/root/updates/gen-online-keys`.
    pub fn gen_online_keys(
        &self,
        txid: &str,
        key_type: &str,
        roles: &[String],
    ) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/gen-online-keys", self.repo());
        let mut body = serde_json::Map::new();
        body.insert("txid".into(), Value::String(txid.to_string()));
        body.insert("key-type".into(), Value::String(key_type.to_string()));
        for r in roles {
            body.insert(r.clone(), Value::Bool(true));
        }
        self.send_json(Method::POST, &path, &body).map(|_| ())
    }

    /// `POST R/root/updates/apply`.
    pub fn apply(&self, txid: &str) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/apply", self.repo());
        self.send_json(Method::POST, &path, &serde_json::json!({ "txid": txid }))
            .map(|_| ())
    }

    /// `POST R/root/updates/cancel` (no body).
    pub fn cancel(&self) -> Result<(), ApiError> {
        let path = format!("{}/root/updates/cancel", self.repo());
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `GET /ota/factories/{F}/users/self/`: the caller's polis-id.
    pub fn polis_id(&self) -> Result<String, ApiError> {
        let path = format!("{}/users/self/", self.factories());
        let resp = self.get(&path)?;
        #[derive(Deserialize)]
        struct User {
            #[serde(rename = "polis-id", default)]
            polis_id: Option<String>,
        }
        let user: User = self.decode("GET", &path, &resp.body)?;
        user.polis_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| self.undecodable("GET", &path, "no polis-id in the answer".into()))
    }

    /// `GET prod-targets/?tag=a,b` (empty list = all tags); `None` on 404 (no production
    /// targets). Every document in memory at once: for the few documents of a check; a
    /// request goes through [`Client::docs_each`].
    pub fn prod_targets(&self, tags: &[String]) -> Result<Option<RawDocs>, ApiError> {
        self.get_docs(false, tags)
    }

    /// `GET wave-targets/?name=a,b` (empty list = all active waves); `None` on 404.
    pub fn wave_targets(&self, names: &[String]) -> Result<Option<RawDocs>, ApiError> {
        self.get_docs(true, names)
    }

    fn docs_path(&self, waves: bool, names: &[String]) -> String {
        let (what, param) = if waves {
            ("wave-targets", "name")
        } else {
            ("prod-targets", "tag")
        };
        format!(
            "{}/{what}/?{param}={}",
            self.factories(),
            escape(&names.join(","))
        )
    }

    /// A map of documents where 404 means none and `null` means empty.
    fn get_docs(&self, waves: bool, names: &[String]) -> Result<Option<RawDocs>, ApiError> {
        let mut map = RawDocs::new();
        let path = self.docs_path(waves, names);
        let found = self.docs_each::<ApiError>(waves, names, &mut |name, text| {
            let text = String::from_utf8(text)
                .map_err(|_| self.undecodable("GET", &path, format!("{name:?} is not UTF-8")))?;
            let raw = RawValue::from_string(text)
                .map_err(|e| self.undecodable("GET", &path, format!("{name:?}: {e}")))?;
            map.insert(name, raw);
            Ok(())
        })?;
        Ok(found.then_some(map))
    }

    /// `GET prod-targets/?tag=…` (or `wave-targets/?name=…` when `waves`), each document
    /// given to `on_doc` (name, text as served) as it arrives: the answer is never held
    /// whole. `false` on 404 (none). A document larger than a bundle member may be
    /// ([`shared::bundle::LIMITS`]) is refused.
    pub fn docs_each<E: From<ApiError>>(
        &self,
        waves: bool,
        names: &[String],
        on_doc: &mut dyn FnMut(String, Vec<u8>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let path = self.docs_path(waves, names);
        let limit = usize::try_from(shared::bundle::LIMITS.max_member_size).unwrap_or(usize::MAX);
        let mut failed: Option<E> = None;
        let got = self.get_streamed(&path, &mut |body| {
            split::for_each_member(body, limit, &mut |name, text| on_doc(name, text)).map_err(|e| {
                match e {
                    SplitError::Member(e) => {
                        failed = Some(e);
                        ApiError::Request("stopped by the caller".into())
                    }
                    SplitError::Read(e) => ApiError::Network {
                        method: "GET".into(),
                        url: format!("{}{}", self.base_url(), path),
                        detail: e.to_string(),
                    },
                    other => self.undecodable("GET", &path, other.to_string()),
                }
            })
        });
        match (got, failed) {
            (_, Some(e)) => Err(e),
            (Ok(found), None) => Ok(found.is_some()),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// `GET ci-targets.pub`: the online targets public key, as served.
    pub fn ci_targets_pub(&self) -> Result<Vec<u8>, ApiError> {
        let path = format!("{}/ci-targets.pub", self.factories());
        Ok(self.get(&path)?.body.to_vec())
    }

    /// `GET targets/?version=N`: CI targets of a build version (name → target, raw).
    pub fn targets_of_version(&self, version: &str) -> Result<RawDocs, ApiError> {
        let path = format!("{}/targets/?version={}", self.factories(), escape(version));
        let resp = self.get(&path)?;
        let map: Option<RawDocs> = self.decode("GET", &path, &resp.body)?;
        Ok(map.unwrap_or_default())
    }

    /// `POST waves/` (sent once): creates a wave with its signed targets.
    pub fn create_wave(&self, wave: &WaveCreate<'_>) -> Result<(), ApiError> {
        let path = format!("{}/waves/", self.factories());
        self.send_json(Method::POST, &path, wave).map(|_| ())
    }

    /// `POST waves/{name}/complete/` (sent once): the wave's targets become the tag's
    /// production targets.
    pub fn complete_wave(&self, name: &str) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/complete/", self.factories(), escape(name));
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `POST waves/{name}/cancel/` (sent once).
    pub fn cancel_wave(&self, name: &str) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/cancel/", self.factories(), escape(name));
        self.send(Method::POST, &path, None).map(|_| ())
    }

    /// `GET waves/{name}/?show-targets=1`: the wave with its targets document as served, or
    /// `None` on 404.
    pub fn wave(&self, name: &str) -> Result<Option<Wave>, ApiError> {
        let path = format!(
            "{}/waves/{}/?show-targets=1",
            self.factories(),
            escape(name)
        );
        match self.get_optional(&path)? {
            None => Ok(None),
            Some(resp) => {
                let w: WaveAnswer = self.decode("GET", &path, &resp.body)?;
                Ok(Some(w.into()))
            }
        }
    }

    /// `POST waves/{name}/sign/` with `{"signatures": [...]}` (sent once): more offline
    /// signatures of an existing wave's targets.
    pub fn sign_wave(&self, name: &str, signatures: &[Signature]) -> Result<(), ApiError> {
        let path = format!("{}/waves/{}/sign/", self.factories(), escape(name));
        self.send_json(Method::POST, &path, &WaveSign { signatures })
            .map(|_| ())
    }

    /// `POST waves/{name}/rollout/` (sent once): the devices it was (or, with `dry-run`,
    /// would be) rolled out to.
    pub fn rollout_wave(
        &self,
        name: &str,
        options: &RolloutOptions,
    ) -> Result<RolloutResult, ApiError> {
        let path = format!("{}/waves/{}/rollout/", self.factories(), escape(name));
        let resp = self.send_json(Method::POST, &path, options)?;
        self.decode("POST", &path, &resp.body)
    }

    /// `GET waves/?limit=&page=[&status=][&tag=]`.
    pub fn waves(
        &self,
        limit: u32,
        page: u32,
        status: Option<&str>,
        tag: Option<&str>,
    ) -> Result<WaveList, ApiError> {
        let mut path = format!("{}/waves/?limit={limit}&page={page}", self.factories());
        if let Some(s) = status {
            path.push_str(&format!("&status={}", escape(s)));
        }
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", escape(t)));
        }
        let resp = self.get(&path)?;
        self.decode("GET", &path, &resp.body)
    }
}

#[cfg(test)]
mod tests {
    use crate::api::test_server::{client, serve, NOT_FOUND, OK_ROOT, UNAVAILABLE};
    use crate::error::ExitCode;

    #[test]
    fn roots_are_read_from_fioctl_paths() {
        let (url, seen) = serve(vec![UNAVAILABLE, OK_ROOT, OK_ROOT]);
        let (c, _) = client(&url, 4);
        assert_eq!(c.root(false).unwrap(), b"{}");
        assert_eq!(c.root(true).unwrap(), b"{}");
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("GET /ota/repo/acme/api/v1/user_repo/root.json HTTP"));
        assert!(
            seen[2].starts_with("GET /ota/repo/acme/api/v1/user_repo/root.json?production=1 HTTP")
        );
    }

    #[test]
    fn cancel_has_no_body_and_apply_is_sent_once() {
        let (url, seen) = serve(vec![OK_ROOT, UNAVAILABLE, OK_ROOT]);
        let (c, _) = client(&url, 4);
        c.cancel().unwrap();
        let err = c.apply("tx").unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Network);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "apply is not retried");
        let head = seen[0].to_lowercase();
        assert!(
            head.starts_with("post /ota/repo/acme/api/v1/user_repo/root/updates/cancel"),
            "{head}"
        );
        assert!(!head.contains("content-type"), "{head}");
        assert!(seen[1].ends_with(r#"{"txid":"tx"}"#), "{}", seen[1]);
    }

    #[test]
    fn not_found_is_none_where_allowed() {
        let (url, seen) = serve(vec![NOT_FOUND, NOT_FOUND, NOT_FOUND]);
        let (c, _) = client(&url, 3);
        assert!(c.prod_targets(&["prod uction".into()]).unwrap().is_none());
        assert!(c.root_version(7, true).unwrap().is_none());
        assert!(c.wave("w/1").unwrap().is_none());
        let seen = seen.lock().unwrap();
        assert!(seen[0].starts_with("GET /ota/factories/acme/prod-targets/?tag=prod%20uction HTTP"));
        assert!(seen[1]
            .starts_with("GET /ota/repo/acme/api/v1/user_repo/7.root.json?production=1 HTTP"));
        assert!(seen[2].starts_with("GET /ota/factories/acme/waves/w%2F1/?show-targets=1 HTTP"));
    }
}
