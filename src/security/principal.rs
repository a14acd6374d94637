//! The principal of a client certificate, as Kafka makes it: the
//! subject's distinguished name in RFC 2253 form (what Java's
//! `X500Principal.getName()` gives: most specific RDN first, e.g.
//! `CN=client-1,O=shardlog`), mapped by `ssl.principal.mapping.rules`
//! (`DEFAULT`, or `RULE:pattern/replacement/[LU]` entries tried in order,
//! the first whose pattern matches the whole name winning).
//!
//! The certificate has already been verified by the TLS handshake; the
//! subject is read with a small DER walk (TLV headers only), refusing
//! anything it does not understand rather than guessing.

use regex::Regex;

/// Reads one DER TLV at the start of `input`: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// The subject DN of an X.509 certificate (DER), in RFC 2253 form.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (tag, certificate, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // [0] version (optional), serialNumber, signature, issuer, validity,
    // subject.
    let (tag, _, rest) = tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
        tbs = tlv(tbs)?.2; // serialNumber
    } else {
        tbs = rest; // that was serialNumber
    }
    for _ in 0..3 {
        tbs = tlv(tbs)?.2; // signature, issuer, validity
    }
    let (tag, subject, _) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    name_rfc2253(subject)
}

/// A Name's RDNs (DER order: least specific first), written most specific
/// first, as RFC 2253 says.
fn name_rfc2253(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (tag, set, rest) = tlv(rdns)?;
        if tag != SET {
            return None;
        }
        rdns = rest;
        let mut attrs = Vec::new();
        let mut set = set;
        while !set.is_empty() {
            let (tag, atv, rest) = tlv(set)?;
            if tag != SEQUENCE {
                return None;
            }
            set = rest;
            let (tag, oid, value_tlv) = tlv(atv)?;
            if tag != OID {
                return None;
            }
            let (value_tag, value, _) = tlv(value_tlv)?;
            attrs.push(attribute(oid, value_tag, value, value_tlv)?);
        }
        parts.push(attrs.join("+"));
    }
    parts.reverse();
    Some(parts.join(","))
}

/// One `type=value` of an RDN.
fn attribute(oid: &[u8], tag: u8, value: &[u8], whole: &[u8]) -> Option<String> {
    let short = match oid {
        [0x55, 0x04, 0x03] => Some("CN"),
        [0x55, 0x04, 0x06] => Some("C"),
        [0x55, 0x04, 0x07] => Some("L"),
        [0x55, 0x04, 0x08] => Some("ST"),
        [0x55, 0x04, 0x09] => Some("STREET"),
        [0x55, 0x04, 0x0a] => Some("O"),
        [0x55, 0x04, 0x0b] => Some("OU"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => Some("DC"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => Some("UID"),
        _ => None,
    };
    // Strings: UTF8String, PrintableString, IA5String, TeletexString (as
    // Latin-1), BMPString (UTF-16BE).
    let text = match tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(value).ok().map(str::to_string),
        0x14 => Some(value.iter().map(|&b| b as char).collect()),
        0x1e if value.len().is_multiple_of(2) => String::from_utf16(
            &value
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .ok(),
        _ => None,
    };
    match (short, text) {
        (Some(s), Some(t)) => Some(format!("{s}={}", escape(&t))),
        // An unknown type or a value that is not a string: the dotted OID
        // and the value's DER in hex, as RFC 2253 writes them.
        _ => {
            let hex: String = whole.iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("{}=#{hex}", dotted(oid)?))
        }
    }
}

fn dotted(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut out = vec![
        (first / 40).min(2) as u64,
        (first as u64) - 40 * (first / 40).min(2) as u64,
    ];
    let mut v = 0u64;
    for &b in rest {
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            out.push(v);
            v = 0;
        }
    }
    Some(out.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

/// RFC 2253 escaping of a value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Map {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl PrincipalMapper {
    /// Parses Kafka's syntax: comma-separated `DEFAULT` and
    /// `RULE:pattern/replacement/` entries, each optionally ending in `L`
    /// or `U` (lower or upper case the result).
    pub fn parse(rules: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let group_refs = Regex::new(r"\$(\d+)").expect("constant pattern");
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("no / after the pattern in {rest:?}"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("no / after the replacement in {rest:?}"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
                // Java's $1 is the regex crate's ${1}.
                let replacement = group_refs.replace_all(&replacement, "$${$1}").into_owned();
                out.push(Rule::Map {
                    pattern,
                    replacement,
                    case,
                });
                rest = after;
            } else {
                return Err(format!("expected DEFAULT or RULE: at {rest:?}"));
            }
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected a comma before {rest:?}"));
            }
        }
        if out.is_empty() {
            out.push(Rule::Default);
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The principal name for a subject DN; `None` when no rule applies
    /// (Kafka then refuses the connection).
    pub fn map(&self, dn: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Map {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        None
    }
}

impl Default for PrincipalMapper {
    fn default() -> Self {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

/// Text up to an unescaped `/`, and what follows it.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    if next != '/' {
                        out.push('\\');
                    }
                    out.push(next);
                }
            }
            '/' => return Some((out, &s[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves Kafka's documented rule examples map as Kafka maps them, and
    // that DEFAULT and a missing match behave as in Kafka.
    #[test]
    fn mapping_rules() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=kafka-1,OU=ServiceUsers,O=Unknown"),
            Some("kafka-1".into())
        );
        assert_eq!(
            m.map("CN=Adam,OU=Sales,O=Org,L=City,ST=State,C=US"),
            Some("adam@sales".into())
        );
        assert_eq!(m.map("cn=Bob.Smith,dc=example"), Some("bob.smith".into()));
        assert_eq!(m.map("O=NoCommonName"), Some("O=NoCommonName".into()));
        let strict = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/U").unwrap();
        assert_eq!(strict.map("CN=ab"), Some("AB".into()));
        assert_eq!(strict.map("O=x"), None, "no rule applies");
        assert_eq!(
            PrincipalMapper::parse("DEFAULT").unwrap().map("CN=a"),
            Some("CN=a".into())
        );
        assert!(PrincipalMapper::parse("RULE:^(.*$/$1/").is_err());
        assert!(PrincipalMapper::parse("NOPE").is_err());
    }

    // Proves the subject of a real certificate (made with rcgen) reads as
    // Java's RFC 2253 form: most specific RDN first, values escaped.
    #[test]
    fn subject_of_a_certificate() {
        use rcgen::{CertificateParams, DnType, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "NO");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "shardlog, inc");
        params
            .distinguished_name
            .push(DnType::CommonName, "Client-Admin");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).as_deref(),
            Some("CN=Client-Admin,O=shardlog\\, inc,C=NO")
        );
        assert_eq!(subject_dn(b"\x30\x03\x02\x01"), None, "truncated input");
    }

    #[test]
    fn rfc2253_escaping() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("trail "), "trail\\ ");
    }
}
