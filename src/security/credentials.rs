//! The users a SASL listener knows: SCRAM credentials in the data
//! directory's [`SCRAM_FILE`] (written by `shardlog format --add-scram`
//! with the syntax of Kafka's `kafka-storage format --add-scram`), and
//! PLAIN users in the file `shardlog.sasl.plain.users.file` names
//! (`name=password` lines; Kafka reads PLAIN users from its JAAS file,
//! which a broker outside the JVM has not).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// SCRAM credentials, in the data directory.
pub const SCRAM_FILE: &str = "scram-credentials.json";

/// One stored SCRAM credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramEntry {
    pub mechanism: String,
    pub name: String,
    #[serde(flatten)]
    pub credential: ScramCredential,
}

/// Every user a SASL listener accepts.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    scram: HashMap<(ScramMechanism, String), ScramCredential>,
    plain: HashMap<String, String>,
}

impl Credentials {
    /// Reads the data directory's SCRAM credentials and the PLAIN users
    /// file (if any). An error names the file and what is wrong.
    pub fn load(data_dir: &Path, plain_users: Option<&Path>) -> Result<Self, String> {
        let mut creds = Credentials::default();
        for e in read_scram(data_dir)? {
            let m = ScramMechanism::from_name(&e.mechanism)
                .ok_or_else(|| format!("{SCRAM_FILE}: unknown mechanism {}", e.mechanism))?;
            creds.scram.insert((m, e.name), e.credential);
        }
        if let Some(path) = plain_users {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("shardlog.sasl.plain.users.file {}: {e}", path.display()))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, password) = line.split_once('=').ok_or_else(|| {
                    format!("{}:{}: expected name=password", path.display(), i + 1)
                })?;
                creds
                    .plain
                    .insert(name.trim().to_string(), password.to_string());
            }
        }
        Ok(creds)
    }

    pub fn scram(&self, mechanism: ScramMechanism, name: &str) -> Option<ScramCredential> {
        self.scram.get(&(mechanism, name.to_string())).cloned()
    }

    /// Whether `password` is the PLAIN password of `name`.
    pub fn plain_matches(&self, name: &str, password: &str) -> bool {
        self.plain
            .get(name)
            .is_some_and(|p| super::scram::constant_time_eq(p.as_bytes(), password.as_bytes()))
    }

    /// Users with SCRAM credentials, with (mechanism, iterations) each.
    pub fn scram_users(&self) -> Vec<(String, ScramMechanism, u32)> {
        let mut out: Vec<_> = self
            .scram
            .iter()
            .map(|((m, n), c)| (n.clone(), *m, c.iterations))
            .collect();
        out.sort();
        out
    }
}

/// The users of this broker, shared by its shards: read at each
/// authentication, changed by AlterUserScramCredentials.
#[derive(Debug)]
pub struct UserStore {
    dir: PathBuf,
    credentials: RwLock<Credentials>,
    /// What `shardlog format --add-scram` left in the data directory and
    /// the metadata has not taken yet (Kafka's bootstrap credentials):
    /// they count on top of the metadata's until imported.
    pending: RwLock<Vec<ScramEntry>>,
}

impl UserStore {
    /// Reads the data directory's SCRAM file and the PLAIN users file.
    pub fn load(data_dir: &Path, plain_users: Option<&Path>) -> Result<Self, String> {
        Ok(UserStore {
            dir: data_dir.to_path_buf(),
            credentials: RwLock::new(Credentials::load(data_dir, plain_users)?),
            pending: RwLock::new(read_scram(data_dir)?),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Credentials> {
        self.credentials.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the SCRAM credentials of a metadata version (the metadata
    /// holds them once imported; see [`import_pending`]); PLAIN users stay
    /// those of their file.
    pub fn sync(&self, entries: &[ScramEntry]) {
        let mut all = entries.to_vec();
        apply_changes(
            &mut all,
            &[],
            &self.pending.read().unwrap_or_else(|e| e.into_inner()),
        );
        let mut scram = HashMap::with_capacity(all.len());
        for e in &all {
            if let Some(m) = ScramMechanism::from_name(&e.mechanism) {
                scram.insert((m, e.name.clone()), e.credential.clone());
            }
        }
        let mut creds = self.credentials.write().unwrap_or_else(|e| e.into_inner());
        creds.scram = scram;
    }

    /// The credentials `shardlog format --add-scram` left for the metadata
    /// to take (none once imported).
    pub fn pending(&self) -> Vec<ScramEntry> {
        self.pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The metadata holds the pending credentials now: the file is moved
    /// aside (`.imported`), so a user deleted at runtime does not come
    /// back at the next start. Blocks (file I/O).
    pub fn imported(&self) -> Result<(), String> {
        let from = self.dir.join(SCRAM_FILE);
        if from.exists() {
            let to = self.dir.join(format!("{SCRAM_FILE}.imported"));
            std::fs::rename(&from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
            crate::storage::fsutil::sync_dir_blocking(&self.dir)
                .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        }
        self.pending
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }
}

/// Applies deletions and upserts to a list of credentials (one per user
/// and mechanism).
pub fn apply_changes(
    all: &mut Vec<ScramEntry>,
    deletions: &[(ScramMechanism, String)],
    upserts: &[ScramEntry],
) {
    all.retain(|e| {
        !deletions
            .iter()
            .any(|(m, n)| m.name() == e.mechanism && *n == e.name)
    });
    for u in upserts {
        all.retain(|o| !(o.mechanism == u.mechanism && o.name == u.name));
        all.push(u.clone());
    }
    all.sort_by(|a, b| (&a.name, &a.mechanism).cmp(&(&b.name, &b.mechanism)));
}

fn read_scram(data_dir: &Path) -> Result<Vec<ScramEntry>, String> {
    let path = data_dir.join(SCRAM_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Adds (or replaces) credentials in the data directory's SCRAM file,
/// durably (a temporary file renamed over it, both fsynced).
pub fn add_scram(data_dir: &Path, entries: &[ScramEntry]) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let mut all = read_scram(data_dir)?;
    for e in entries {
        all.retain(|o| !(o.mechanism == e.mechanism && o.name == e.name));
        all.push(e.clone());
    }
    write_scram(data_dir, &all)
}

fn write_scram(data_dir: &Path, all: &[ScramEntry]) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(all).expect("plain data serializes");
    crate::storage::fsutil::write_file_durably_blocking(data_dir, SCRAM_FILE, &bytes)
        .map_err(|e| format!("{}: {e}", data_dir.join(SCRAM_FILE).display()))
}

/// Parses one `--add-scram` argument, Kafka's syntax:
/// `SCRAM-SHA-256=[name=alice,password=alice-secret]`, with optional
/// `iterations=N` (4096..=16384, default 4096) and `salt=BASE64`, or
/// `saltedpassword=BASE64` with `salt` instead of a password. Values may
/// be double-quoted.
pub fn parse_add_scram(arg: &str) -> Result<ScramEntry, String> {
    let bad = |why: &str| format!("--add-scram {arg}: {why}");
    let (mechanism, rest) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected MECHANISM=[...]"))?;
    let m = ScramMechanism::from_name(mechanism.trim())
        .ok_or_else(|| bad("the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let body = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| bad("expected [name=...,password=...]"))?;
    let mut fields: HashMap<&str, String> = HashMap::new();
    for part in body.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("expected key=value pairs"))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        fields.insert(k.trim(), v.to_string());
    }
    for k in fields.keys() {
        if !["name", "password", "iterations", "salt", "saltedpassword"].contains(k) {
            return Err(bad(&format!("unknown key {k}")));
        }
    }
    let name = fields
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name is required"))?
        .clone();
    let iterations = match fields.get("iterations") {
        Some(i) => i
            .parse::<u32>()
            .ok()
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| {
                bad(&format!(
                    "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
                ))
            })?,
        None => MIN_ITERATIONS,
    };
    let salt = match fields.get("salt") {
        Some(s) => B64.decode(s).map_err(|_| bad("salt must be base64"))?,
        None => {
            let mut salt = vec![0u8; 32];
            getrandom::getrandom(&mut salt).map_err(|e| bad(&e.to_string()))?;
            salt
        }
    };
    let credential = match (fields.get("password"), fields.get("saltedpassword")) {
        (Some(p), None) => ScramCredential::from_password(m, p, &salt, iterations),
        (None, Some(sp)) => {
            if !fields.contains_key("salt") {
                return Err(bad("saltedpassword needs salt"));
            }
            let salted = B64
                .decode(sp)
                .map_err(|_| bad("saltedpassword must be base64"))?;
            ScramCredential::from_salted_password(m, &salted, &salt, iterations)
        }
        _ => return Err(bad("give exactly one of password and saltedpassword")),
    };
    Ok(ScramEntry {
        mechanism: m.name().to_string(),
        name,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves Kafka's --add-scram syntax parses (quoted values, iterations,
    // a given salt), bad arguments are refused with the reason, and the
    // file round-trips through load.
    #[test]
    fn add_scram_syntax_and_file() {
        let e = parse_add_scram(r#"SCRAM-SHA-512=[name=alice,password="a,b"]"#);
        assert!(e.is_err(), "a comma inside a value splits it, as in Kafka");
        let e = parse_add_scram(
            r#"SCRAM-SHA-256=[name=alice,salt="c2FsdA==",password="alice-secret",iterations=8192]"#,
        )
        .unwrap();
        assert_eq!(e.credential.iterations, 8192);
        assert_eq!(e.credential.salt, b"salt");
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=b,colour=red]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        add_scram(dir.path(), std::slice::from_ref(&e)).unwrap();
        let creds = Credentials::load(dir.path(), None).unwrap();
        assert_eq!(
            creds.scram(ScramMechanism::Sha256, "alice"),
            Some(e.credential.clone())
        );
        assert_eq!(creds.scram(ScramMechanism::Sha512, "alice"), None);
    }
}
