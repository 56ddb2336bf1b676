//! Connection URLs: `mysql://user:pass@host:port?ssl-mode=…&ssl-ca=PATH&ssl-cert=PATH&ssl-key=PATH
//! &server-id=N&connect-timeout=S&read-timeout=S&heartbeat=S&allow-public-key-retrieval=true`.
//! User and password are percent-decoded; the password may come from `MES_PASSWORD` instead.

use std::time::Duration;

use mysql_repl_proto::{ConnectConfig, SslMode, TlsOptions};

/// A parsed connection URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub connect: ConnectConfig,
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("bad percent-encoding in `{s}`"))?;
            out.push(
                u8::from_str_radix(hex, 16)
                    .map_err(|_| format!("bad percent-encoding `%{hex}`"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded text is not UTF-8".to_owned())
}

fn secs(v: &str, name: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{name} must be a positive number of seconds, got `{v}`"))
}

/// Parse a URL.
pub fn parse(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
        .ok_or_else(|| {
            format!("`{url}` is not a mysql:// URL (mysql://user:pass@host:port?ssl-mode=…)")
        })?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut connect = ConnectConfig::default();
    if let Some(u) = userinfo {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        connect.user = percent_decode(user)?;
        connect.password = percent_decode(pass)?;
    }
    if connect.password.is_empty() {
        if let Ok(p) = std::env::var("MES_PASSWORD") {
            connect.password = p;
        }
    }
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, p) = h.split_once(']').ok_or("unterminated [IPv6] host")?;
        (h.to_owned(), p.strip_prefix(':').unwrap_or(""))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p),
            None => (hostport.to_owned(), ""),
        }
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    let port = if port.is_empty() {
        3306
    } else {
        port.parse().map_err(|_| format!("bad port `{port}`"))?
    };
    let mut tls = TlsOptions::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        match k.replace('_', "-").to_ascii_lowercase().as_str() {
            "ssl-mode" => {
                tls.mode = match v.to_ascii_lowercase().replace('_', "-").as_str() {
                    "disabled" => SslMode::Disabled,
                    "preferred" => SslMode::Preferred,
                    "required" => SslMode::Required,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-identity" => SslMode::VerifyIdentity,
                    other => {
                        return Err(format!(
                            "ssl-mode `{other}`: use disabled, preferred, required, verify-ca or verify-identity"
                        ));
                    }
                }
            }
            "ssl-ca" => tls.ca_file = Some(v.into()),
            "ssl-cert" => tls.cert_file = Some(v.into()),
            "ssl-key" => tls.key_file = Some(v.into()),
            "server-id" => {
                connect.server_id = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("server-id must be 1..4294967295, got `{v}`"))?
            }
            "connect-timeout" => connect.connect_timeout = secs(&v, "connect-timeout")?,
            "read-timeout" => connect.read_timeout = secs(&v, "read-timeout")?,
            "heartbeat" | "heartbeat-period" => connect.heartbeat_period = secs(&v, "heartbeat")?,
            "allow-public-key-retrieval" => {
                connect.allow_public_key_retrieval =
                    matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
            }
            "server-public-key-path" => {
                connect.server_public_key = Some(
                    std::fs::read_to_string(&v)
                        .map_err(|e| format!("server-public-key-path {v}: {e}"))?,
                )
            }
            "max-event-size" => {
                connect.max_event_size =
                    v.parse().map_err(|_| format!("bad max-event-size `{v}`"))?
            }
            other => return Err(format!("unknown URL option `{other}`")),
        }
    }
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err("ssl-cert and ssl-key must be given together".into());
    }
    connect.tls = tls;
    connect.host = host.clone();
    if connect.read_timeout < connect.heartbeat_period * 2 {
        connect.read_timeout = connect.heartbeat_period * 2;
    }
    Ok(Target {
        host,
        port,
        connect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse("mysql://re%40pl:p%3Ass@db.example:3307?ssl-mode=verify-identity&ssl-ca=/ca.pem&server-id=77").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("db.example", 3307));
        assert_eq!(t.connect.user, "re@pl");
        assert_eq!(t.connect.password, "p:ss");
        assert_eq!(t.connect.tls.mode, SslMode::VerifyIdentity);
        assert_eq!(t.connect.server_id, 77);
        let t = parse("mysql://root@[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 3306));
        assert!(parse("http://x").is_err());
        assert!(parse("mysql://u@h?ssl-mode=sometimes").is_err());
        assert!(parse("mysql://u@h?bogus=1").is_err());
        assert!(parse("mysql://u@h:notaport").is_err());
        assert!(parse("mysql://u@h?ssl-cert=a").is_err());
    }
}
