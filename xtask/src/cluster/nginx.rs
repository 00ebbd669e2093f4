//! nginx (Debian's package) as the load balancer in front of the query-api and command-api
//! replicas, run in the foreground with its own prefix under target/, so it needs no system
//! configuration and the supervisor stops it like any service.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::services::ServiceSpec;

const NGINX: &str = "/usr/sbin/nginx";

/// Writes the configuration into `dir` and returns how to run nginx with it.
pub fn spec(dir: &Path, query: Balanced, command: Balanced) -> Result<ServiceSpec> {
    if !Path::new(NGINX).is_file() {
        bail!("{NGINX} is missing: `apt-get install nginx` (.ci/run does)");
    }
    fs::create_dir_all(dir.join("temp")).with_context(|| format!("creating {}", dir.display()))?;
    let conf = dir.join("nginx.conf");
    fs::write(&conf, config(dir, &query, &command)).with_context(|| format!("writing {}", conf.display()))?;
    Ok(ServiceSpec {
        name: "nginx".into(),
        program: PathBuf::from(NGINX),
        args: vec![
            "-p".into(),
            dir.display().to_string(),
            "-c".into(),
            conf.display().to_string(),
            // Before the configuration is read, errors go to the compiled-in log path.
            "-e".into(),
            "stderr".into(),
        ],
        env: Vec::new(),
        // Answered by a query-api replica behind it.
        health_addr: query.listen,
    })
}

/// One balanced service: where nginx listens, and the replicas behind it.
pub struct Balanced {
    pub listen: SocketAddr,
    pub upstreams: Vec<SocketAddr>,
}

fn upstream(name: &str, balanced: &Balanced) -> String {
    let servers: String = balanced
        .upstreams
        .iter()
        // A replica that fails three times in a row rests for 2 s; one failure alone (a replica
        // restarting) only moves that request to the next replica.
        .map(|addr| format!("        server {addr} max_fails=3 fail_timeout=2s;\n"))
        .collect();
    format!("    upstream {name} {{\n{servers}        keepalive 32;\n    }}\n")
}

/// Proxy settings shared by every location: keep-alive to the upstreams, short connect timeouts.
const PROXY: &str = "\
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
";

fn config(dir: &Path, query: &Balanced, command: &Balanced) -> String {
    let temp = dir.join("temp").display().to_string();
    let mut conf = format!(
        "# Written by `cargo xtask cluster` (xtask/src/cluster/nginx.rs); rewritten on every start.\n\
         daemon off;\n\
         worker_processes 1;\n\
         pid {pid};\n\
         error_log stderr warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {temp}/body;\n\
         \x20   proxy_temp_path {temp}/proxy;\n\
         \x20   fastcgi_temp_path {temp}/fastcgi;\n\
         \x20   uwsgi_temp_path {temp}/uwsgi;\n\
         \x20   scgi_temp_path {temp}/scgi;\n\
         \x20   client_max_body_size 64m;\n",
        pid = dir.join("nginx.pid").display(),
    );
    conf.push_str(&upstream("query_api", query));
    conf.push_str(&upstream("command_api", command));
    conf.push_str(&format!(
        "    server {{\n\
         \x20       listen {listen};\n\
         \x20       # Reads are idempotent: a replica that fails (stopping, killed) costs a retry on\n\
         \x20       # the next one, not an error. Not on 503: `not_caught_up` would only wait again\n\
         \x20       # on a replica of the same standby.\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://query_api;\n{PROXY}\
         \x20           proxy_next_upstream error timeout http_502 http_504;\n\
         \x20           proxy_next_upstream_tries 3;\n\
         \x20       }}\n\
         \x20       # Server-sent events and exports are streamed, never buffered.\n\
         \x20       location ~ ^/v1/(live|audit/export) {{\n\
         \x20           proxy_pass http://query_api;\n{PROXY}\
         \x20           proxy_buffering off;\n\
         \x20           proxy_read_timeout 1h;\n\
         \x20       }}\n\
         \x20   }}\n",
        listen = query.listen,
    ));
    conf.push_str(&format!(
        "    server {{\n\
         \x20       listen {listen};\n\
         \x20       # Only requests no replica has answered are moved: a write that reached\n\
         \x20       # command-api is retried by its client, with the same id.\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://command_api;\n{PROXY}\
         \x20           proxy_next_upstream error timeout;\n\
         \x20           proxy_next_upstream_tries 2;\n\
         \x20           proxy_read_timeout 60s;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n",
        listen = command.listen,
    ));
    conf
}
