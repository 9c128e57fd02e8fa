//! The SIP URIs we are configured with: a server's (`sip:127.0.0.1:5060;transport=udp`,
//! `sips:presence.example.com`) and presentities (`sip:alice@example.com`). Only what
//! a client needs to reach a server and to name a user; no escapes in the user part.

use std::fmt;

/// How requests travel to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; the transaction retransmits (timer E).
    Udp,
    /// One persistent connection.
    Tcp,
    /// One persistent TLS connection.
    Tls,
}

impl Transport {
    /// The name in a Via header (`UDP`, `TCP`, `TLS`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Whether the transport delivers reliably (no retransmissions).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The port a server listens on when the URI names none (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// A SIP or SIPS URI, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` (TLS required).
    pub secure: bool,
    /// The user part, when there is one.
    pub user: Option<String>,
    /// The host: a name, an IPv4 address or an IPv6 address without brackets.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// The `transport` parameter, when given.
    pub transport: Option<Transport>,
}

/// Why a URI is not one we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Neither `sip:` nor `sips:`.
    #[error("a SIP URI starts with sip: or sips:")]
    Scheme,
    /// No host after the scheme (and user).
    #[error("the URI names no host")]
    NoHost,
    /// The port is not a number from 1 to 65535.
    #[error("the port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// A `transport` other than udp, tcp or tls.
    #[error("transport={0} is not one of udp, tcp, tls")]
    Transport(String),
    /// `sips:` over UDP or TCP.
    #[error("a sips: URI needs transport=tls")]
    InsecureSips,
    /// A character that has no place in it.
    #[error("the URI holds {0:?}, which a SIP URI cannot hold unescaped")]
    Character(char),
}

impl SipUri {
    /// Parses `sip:[user@]host[:port][;param…]` (or `sips:`); headers (`?…`) are refused.
    pub fn parse(text: &str) -> Result<SipUri, UriError> {
        let text = text.trim();
        let (secure, rest) = if let Some(rest) = strip_prefix_ci(text, "sips:") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(text, "sip:") {
            (false, rest)
        } else {
            return Err(UriError::Scheme);
        };
        if let Some(c) = rest
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '?'))
        {
            return Err(UriError::Character(c));
        }
        let (address, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (user, hostport) = match address.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, address),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UriError::NoHost);
        }
        let mut transport = None;
        for param in params.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.eq_ignore_ascii_case("transport") {
                transport = Some(match value.to_ascii_lowercase().as_str() {
                    "udp" => Transport::Udp,
                    "tcp" => Transport::Tcp,
                    "tls" => Transport::Tls,
                    _ => return Err(UriError::Transport(value.to_owned())),
                });
            }
        }
        if secure && matches!(transport, Some(Transport::Udp | Transport::Tcp)) {
            return Err(UriError::InsecureSips);
        }
        Ok(SipUri {
            secure,
            user,
            host: host.to_owned(),
            port,
            transport,
        })
    }

    /// The transport to use: the parameter, else TLS for `sips:`, else UDP (§18.1.1
    /// without NAPTR/SRV lookups).
    pub fn effective_transport(&self) -> Transport {
        self.transport.unwrap_or(if self.secure {
            Transport::Tls
        } else {
            Transport::Udp
        })
    }

    /// The port to use: the given one or the transport's default.
    pub fn effective_port(&self) -> u16 {
        self.port
            .unwrap_or_else(|| self.effective_transport().default_port())
    }

    /// `host:port` for a socket address lookup (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        format!("{}:{}", bracketed(&self.host), self.effective_port())
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&bracketed(&self.host))?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(transport) = self.transport {
            write!(f, ";transport={transport}")?;
        }
        Ok(())
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UriError::NoHost)?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(UriError::Port(p.to_owned())),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_with_their_transport_and_port() {
        let u = SipUri::parse("sip:127.0.0.1:5060;transport=udp").unwrap();
        assert_eq!(
            (u.host.as_str(), u.effective_port(), u.effective_transport()),
            ("127.0.0.1", 5060, Transport::Udp)
        );
        let u = SipUri::parse("sips:presence.example.com").unwrap();
        assert_eq!(
            (u.effective_port(), u.effective_transport()),
            (5061, Transport::Tls)
        );
        let u = SipUri::parse("sip:[::1]:5070;transport=TCP").unwrap();
        assert_eq!(u.host_port(), "[::1]:5070");
        assert_eq!(u.to_string(), "sip:[::1]:5070;transport=tcp");
        let u = SipUri::parse("sip:alice@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.to_string(), "sip:alice@example.com");
    }

    #[test]
    fn unusable_uris_say_why() {
        assert_eq!(SipUri::parse("http://x"), Err(UriError::Scheme));
        assert_eq!(SipUri::parse("sip:"), Err(UriError::NoHost));
        assert_eq!(
            SipUri::parse("sip:h:0"),
            Err(UriError::Port("0".to_owned()))
        );
        assert_eq!(
            SipUri::parse("sip:h;transport=sctp"),
            Err(UriError::Transport("sctp".to_owned()))
        );
        assert_eq!(
            SipUri::parse("sips:h;transport=udp"),
            Err(UriError::InsecureSips)
        );
        assert_eq!(SipUri::parse("sip:a b@h"), Err(UriError::Character(' ')));
    }
}
