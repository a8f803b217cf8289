//! Invite links: the URL fragment that hands a new member the relay address,
//! the workspace id and the workspace secret.
//!
//! Format (the part after `#`; browsers never send it to any server):
//!
//! ```text
//! #join=<percent-encoded relay URL>&ws=<workspace id, base64url>&k=<secret, base64url>[&name=<percent-encoded workspace name>]
//! ```
//!
//! `join` is omitted for a workspace that syncs without a relay. `name` is
//! the workspace's name when the link was made, shown to the person joining
//! before they agree to join; it is a label only (anyone holding the link
//! can change it), never used to decide anything. Parsing
//! accepts a whole URL (`https://app.example/crm/#join=...`) or just the
//! fragment, with or without `#`, in any field order; unknown fields are
//! ignored so later versions can add some.

use core::fmt;

use crate::crypto::{SecretError, WorkspaceSecret};
use crate::ids::{IdError, WorkspaceId};

/// An invite link's fragment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// A required field is absent.
    #[error("the invite link has no `{0}=` field; expected #join=<relay url>&ws=<workspace id>&k=<secret>")]
    MissingField(&'static str),
    /// A field appears twice.
    #[error("the invite link has the field `{0}=` more than once")]
    DuplicateField(&'static str),
    /// A `%` escape is not two hex digits, or does not decode to UTF-8.
    #[error("the invite link's `{0}` field is not valid percent-encoded UTF-8")]
    BadPercentEncoding(&'static str),
    /// The relay URL is not a `ws://` or `wss://` URL.
    #[error("the invite link's relay address must start with ws:// or wss://, got {0:?}")]
    BadRelayUrl(String),
    /// The workspace id is malformed.
    #[error("the invite link's workspace id is invalid: {0}")]
    BadWorkspaceId(IdError),
    /// The secret is malformed.
    #[error("the invite link's key is invalid: {0}")]
    BadSecret(SecretError),
}

/// What an invite link carries.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    relay_url: Option<String>,
    workspace: WorkspaceId,
    secret: WorkspaceSecret,
    name: Option<String>,
}

/// The longest workspace name an invite carries, in characters; a longer
/// one is cut, so a link stays short enough to paste anywhere.
pub const MAX_NAME_CHARS: usize = 80;

impl fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviteLink")
            .field("relay_url", &self.relay_url)
            .field("workspace", &self.workspace)
            .field("secret", &self.secret)
            .field("name", &self.name)
            .finish()
    }
}

fn check_relay_url(url: &str) -> Result<(), InviteError> {
    let rest = url.strip_prefix("wss://").or_else(|| url.strip_prefix("ws://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(InviteError::BadRelayUrl(url.to_owned())),
    }
}

impl InviteLink {
    /// Builds an invite.
    ///
    /// # Errors
    /// [`InviteError::BadRelayUrl`] when `relay_url` is not `ws://` or `wss://`.
    pub fn new(
        relay_url: Option<String>,
        workspace: WorkspaceId,
        secret: WorkspaceSecret,
    ) -> Result<Self, InviteError> {
        if let Some(url) = &relay_url {
            check_relay_url(url)?;
        }
        Ok(Self { relay_url, workspace, secret, name: None })
    }

    /// The same invite, labelled with the workspace's name (trimmed, cut
    /// to [`MAX_NAME_CHARS`]; an empty name is no name).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        let name: String = name.trim().chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
        self.name = (!name.is_empty()).then_some(name);
        self
    }

    /// The workspace's name as the link's author labelled it, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The relay's WebSocket URL, if the workspace uses one.
    pub fn relay_url(&self) -> Option<&str> {
        self.relay_url.as_deref()
    }

    /// The workspace id.
    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// The workspace secret.
    pub fn secret(&self) -> &WorkspaceSecret {
        &self.secret
    }

    /// The fragment, starting with `#`, to append to the app's URL.
    pub fn to_fragment(&self) -> String {
        let mut out = String::from("#");
        if let Some(url) = &self.relay_url {
            out.push_str("join=");
            out.push_str(&percent_encode(url));
            out.push('&');
        }
        out.push_str("ws=");
        out.push_str(&self.workspace.to_string());
        out.push_str("&k=");
        out.push_str(&self.secret.to_base64url());
        if let Some(name) = &self.name {
            out.push_str("&name=");
            out.push_str(&percent_encode(name));
        }
        out
    }

    /// Reads an invite from a whole URL or from its fragment.
    ///
    /// # Errors
    /// An [`InviteError`] naming the missing, repeated or malformed field.
    pub fn parse(input: &str) -> Result<Self, InviteError> {
        let input = input.trim();
        let fragment = match input.find('#') {
            Some(i) => &input[i + 1..],
            None => input,
        };
        let mut join = None;
        let mut ws = None;
        let mut k = None;
        let mut name = None;
        for pair in fragment.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match key {
                "join" => (&mut join, "join"),
                "ws" => (&mut ws, "ws"),
                "k" => (&mut k, "k"),
                "name" => (&mut name, "name"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(InviteError::DuplicateField(name));
            }
            *slot = Some(percent_decode(value).ok_or(InviteError::BadPercentEncoding(name))?);
        }
        let workspace =
            ws.ok_or(InviteError::MissingField("ws"))?.parse::<WorkspaceId>().map_err(InviteError::BadWorkspaceId)?;
        let secret = WorkspaceSecret::from_base64url(&k.ok_or(InviteError::MissingField("k"))?)
            .map_err(InviteError::BadSecret)?;
        let relay_url = join.filter(|u| !u.is_empty());
        let link = Self::new(relay_url, workspace, secret)?;
        Ok(match name {
            Some(name) => link.with_name(&name),
            None => link,
        })
    }
}

fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InviteLink {
        InviteLink::new(
            Some("wss://relay.example.com:8787/sync?x=1&y=2".into()),
            WorkspaceId::from_bytes([5; 16]),
            WorkspaceSecret::from_random_bytes([6; 32]),
        )
        .expect("valid invite")
    }

    #[test]
    fn fragment_round_trips() {
        let link = sample();
        let fragment = link.to_fragment();
        assert!(fragment.starts_with("#join=wss%3A%2F%2Frelay.example.com%3A8787%2Fsync%3Fx%3D1%26y%3D2&ws="));
        assert_eq!(InviteLink::parse(&fragment), Ok(link));
    }

    #[test]
    fn a_whole_url_with_fields_in_any_order_parses() {
        let link = sample();
        let f = link.to_fragment();
        let fields: Vec<&str> = f[1..].split('&').collect();
        let url = format!("https://app.example/crm/#{}&{}&future=1&{}", fields[2], fields[0], fields[1]);
        assert_eq!(InviteLink::parse(&url), Ok(link));
    }

    #[test]
    fn an_invite_without_relay_round_trips() {
        let link = InviteLink::new(None, WorkspaceId::from_bytes([1; 16]), WorkspaceSecret::from_random_bytes([2; 32]))
            .expect("valid");
        let fragment = link.to_fragment();
        assert!(fragment.starts_with("#ws="));
        assert_eq!(InviteLink::parse(&fragment), Ok(link));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let link = sample();
        let ws = link.workspace().to_string();
        let k = link.secret().to_base64url();
        assert_eq!(InviteLink::parse(&format!("#ws={ws}")), Err(InviteError::MissingField("k")));
        assert_eq!(InviteLink::parse(&format!("#k={k}")), Err(InviteError::MissingField("ws")));
        assert_eq!(InviteLink::parse(&format!("#ws={ws}&ws={ws}&k={k}")), Err(InviteError::DuplicateField("ws")));
        assert_eq!(
            InviteLink::parse(&format!("#join=%zz&ws={ws}&k={k}")),
            Err(InviteError::BadPercentEncoding("join"))
        );
        assert_eq!(
            InviteLink::parse(&format!("#join=%ff&ws={ws}&k={k}")),
            Err(InviteError::BadPercentEncoding("join"))
        );
        assert_eq!(
            InviteLink::parse(&format!("#join=https%3A%2F%2Fx&ws={ws}&k={k}")),
            Err(InviteError::BadRelayUrl("https://x".into()))
        );
        assert!(matches!(InviteLink::parse(&format!("#ws=abc&k={k}")), Err(InviteError::BadWorkspaceId(_))));
        assert!(matches!(InviteLink::parse(&format!("#ws={ws}&k=abc")), Err(InviteError::BadSecret(_))));
        assert_eq!(InviteLink::parse(""), Err(InviteError::MissingField("ws")));
        assert_eq!(InviteLink::parse("#%"), Err(InviteError::MissingField("ws")));
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let link = sample();
        assert!(!format!("{link:?}").contains(&link.secret().to_base64url()));
    }

    #[test]
    fn a_workspace_name_round_trips_and_links_without_one_still_parse() {
        let named = sample().with_name("Acme & Söhne sales");
        let fragment = named.to_fragment();
        assert!(fragment.ends_with("&name=Acme%20%26%20S%C3%B6hne%20sales"), "{fragment}");
        let parsed = InviteLink::parse(&fragment).expect("valid");
        assert_eq!(parsed.name(), Some("Acme & Söhne sales"));
        assert_eq!(parsed, named);
        assert_eq!(InviteLink::parse(&sample().to_fragment()).expect("valid").name(), None);
    }

    #[test]
    fn a_workspace_name_is_trimmed_cut_and_stripped_of_control_characters() {
        assert_eq!(sample().with_name("  ").name(), None);
        assert_eq!(sample().with_name(" Team\nA ").name(), Some("TeamA"));
        let long = "x".repeat(MAX_NAME_CHARS + 20);
        let fragment = format!("{}&name={long}", sample().to_fragment());
        assert_eq!(InviteLink::parse(&fragment).expect("valid").name().map(str::len), Some(MAX_NAME_CHARS));
    }
}
