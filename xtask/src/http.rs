//! A deliberately tiny HTTP/1.1 client over `std::net`.
//!
//! xtask only needs health checks and a few JSON POSTs against services on this machine; a real
//! HTTP client would pull an async runtime or TLS stack into the task runner that every developer
//! and CI builds first. One request per connection (`Connection: close`), read to the end.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Resolves a listen address such as `127.0.0.1:8081` or `0.0.0.0:8081` to an address we can
/// connect to: a service listening on all interfaces is reached through loopback.
pub fn connect_addr(listen_addr: &str) -> Result<SocketAddr> {
    let mut addr = listen_addr
        .to_socket_addrs()
        .with_context(|| format!("{listen_addr:?} is not a host:port address"))?
        .next()
        .ok_or_else(|| anyhow!("{listen_addr:?} resolves to no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// `GET`, with `token` as the bearer credential when given (health checks need none).
pub fn get(addr: SocketAddr, path: &str, token: Option<&str>, timeout: Duration) -> Result<Response> {
    request(addr, "GET", path, None, token, timeout)
}

pub fn post_json(addr: SocketAddr, path: &str, json: &str, token: &str, timeout: Duration) -> Result<Response> {
    request(addr, "POST", path, Some(json), Some(token), timeout)
}

fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json: Option<&str>,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = json {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending {method} {path} to {addr}"))?;

    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to {method} {path} from {addr}"))?;
    parse_response(&raw).with_context(|| format!("bad response to {method} {path} from {addr}"))
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];

    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a `Transfer-Encoding: chunked` body (extensions and trailers ignored).
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| anyhow!("bad chunk size {size_hex:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            bail!("truncated chunk");
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_response() {
        let response = parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, "{}");
    }

    #[test]
    fn parses_a_chunked_response() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "Wikipedia");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_response(b"nonsense").is_err());
    }

    #[test]
    fn connects_to_loopback_for_wildcard_listen_addresses() {
        assert_eq!(connect_addr("0.0.0.0:8081").unwrap(), "127.0.0.1:8081".parse().unwrap());
        assert_eq!(
            connect_addr("127.0.0.1:8082").unwrap(),
            "127.0.0.1:8082".parse().unwrap()
        );
    }
}
