//! The dashboard inside a frame on another site, as Hugging Face shows a
//! Space (the app on `*.hf.space` in an `<iframe>` on huggingface.co).
//!
//! Debian's nginx, started here on free loopback ports with a self-signed
//! certificate made here by the openssl CLI, terminates TLS for two sites:
//! `https://localhost:P1/` proxies to the app's plain HTTP port (with
//! `X-Forwarded-Proto: https`; the app trusts 127.0.0.1 as a proxy), and
//! `https://127.0.0.1:P2/` serves a static parent page that frames
//! `https://localhost:P1/login`. `localhost` and `127.0.0.1` are different
//! sites to the browser, so the dashboard is a cross-site frame there: it
//! shows only because `FRAME_ANCESTORS` names the parent's origin, and its
//! login and session work only because its cookies are then
//! `SameSite=None; Secure; Partitioned` (a `SameSite=Strict` cookie is
//! never sent inside a frame on another site). Chromium trusts the
//! certificate through `--ignore-certificate-errors-spki-list` (the
//! SHA-256 of its public key), nothing broader.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use hajimi::secret::{ApiKey, Secret};
use sha2::{Digest, Sha256};

use crate::browser::Browser;
use crate::helpers::*;
use crate::{screenshot, TempDir};

const DASHBOARD_PASSWORD: &str = "framed-dashboard-password";

/// `name` on `PATH`, else in `/usr/sbin` (where Debian puts nginx, off a
/// non-root user's `PATH`).
fn program(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([Path::new("/usr/sbin").join(name)]).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} is not installed: run `make e2e`, which installs Debian's nginx and openssl when missing")
    })
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(output.status.success(), "{command:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    output.stdout
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, valid one
/// day (`cert.pem`, `key.pem` in `dir`), and what Chromium's
/// `--ignore-certificate-errors-spki-list` takes to trust it: the base64
/// SHA-256 of its DER SubjectPublicKeyInfo.
fn make_certificate(dir: &Path) -> String {
    let openssl = program("openssl");
    run(Command::new(&openssl)
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem")));
    let spki = run(Command::new(&openssl).args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(dir.join("key.pem")));
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
}

/// nginx as a child process, with everything it writes in its own
/// directory; killed when dropped (the test's end, or its panic — then
/// its error log is printed).
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// Serves `https://localhost:dashboard_port/` → `http://127.0.0.1:app_port`
    /// and `https://127.0.0.1:parent_port/` → `dir/site/`, with the
    /// certificate of [`make_certificate`] in `dir`.
    fn start(dir: &Path, dashboard_port: u16, parent_port: u16, app_port: u16) -> Nginx {
        let d = dir.display();
        let config = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ text/html html; }}
    default_type application/octet-stream;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    # The dashboard, over HTTPS, as a Space's own host.
    server {{
        listen 127.0.0.1:{dashboard_port} ssl;
        server_name localhost;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
    # Another site, framing it (huggingface.co's part).
    server {{
        listen 127.0.0.1:{parent_port} ssl;
        server_name 127.0.0.1;
        root {d}/site;
        index index.html;
        log_not_found off;
    }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let mut child = Command::new(program("nginx"))
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nginx: {e} (run `make e2e` to install it)"));
        let error_log = || std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ![dashboard_port, parent_port].iter().all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok()) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nginx exited at start ({status}):\n{}", error_log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nginx did not listen on {dashboard_port} and {parent_port} within 10 s:\n{}", error_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, dir: dir.to_owned() }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for log in ["error.log", "access.log"] {
                let text = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                eprintln!("nginx {log}:\n{text}");
            }
        }
    }
}

/// The parent site's page: a banner and the dashboard in a frame that
/// fills the width, as huggingface.co shows a Space.
fn parent_page(dashboard: &str, parent: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Another site framing hajimi</title>
<style>
  body {{ margin: 0; font: 15px/1.4 sans-serif; background: #fef3c7; color: #1c1917; }}
  header {{ padding: 12px 16px; }}
  iframe {{ display: block; width: 100%; height: 900px; border: 0; border-top: 4px solid #d97706; }}
</style>
</head>
<body>
<header><b>{parent}</b> (another site) shows the dashboard of <b>{dashboard}</b> in a frame</header>
<iframe id="space" src="{dashboard}/login" title="hajimi dashboard"></iframe>
</body>
</html>
"#
    )
}

/// The current frame's address and text, for failure messages.
async fn frame_state(browser: &Browser) -> String {
    let state = browser
        .try_execute("return location.href + '\\n' + (document.body ? document.body.innerText : '')")
        .await
        .and_then(|value| value.as_str().map(str::to_owned));
    let state = state.unwrap_or_else(|| "(no script runs in the frame: an error page?)".to_owned());
    state.chars().take(1500).collect()
}

#[actix_web::test]
async fn the_dashboard_works_in_a_frame_on_another_site() {
    let started = Instant::now();
    let dir = TempDir::new("framed");
    let spki = make_certificate(&dir.0);
    let dashboard_port = free_port();
    let parent_port = std::iter::repeat_with(free_port).find(|port| *port != dashboard_port).unwrap();
    let dashboard = format!("https://localhost:{dashboard_port}");
    let parent = format!("https://127.0.0.1:{parent_port}");

    let ancestors = vec![parent.clone()];
    let app = spawn_app_with(0, move |config| {
        config.web_password = Secret::new(DASHBOARD_PASSWORD);
        config.frame_ancestors = ancestors;
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let app_port = url::Url::parse(&app.address).unwrap().port().expect("the app's port");
    std::fs::create_dir_all(dir.0.join("site")).unwrap();
    std::fs::write(dir.0.join("site/index.html"), parent_page(&dashboard, &parent)).unwrap();
    let nginx = Nginx::start(&dir.0, dashboard_port, parent_port, app_port);
    let browser = Browser::start_with(&[&format!("--ignore-certificate-errors-spki-list={spki}")]).await;

    // The parent page, on its own site; the dashboard's login in its frame.
    browser.goto(&format!("{parent}/")).await;
    let top = browser.current_url().await;
    assert_eq!(top.origin().ascii_serialization(), parent, "the parent page did not load");
    browser.enter_frame(0).await;
    // A frame the dashboard's headers forbid becomes Chromium's error page
    // ("localhost refused to connect") at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.try_find("#login-form").await.is_none() {
        let href = browser.try_execute("return location.href").await.unwrap_or_default();
        let blocked = href.as_str().is_some_and(|href| href.starts_with("chrome-error:"));
        assert!(
            !blocked && Instant::now() < deadline,
            "the dashboard's login did not show in the frame on {parent} (does its Content-Security-Policy \
             allow `frame-ancestors {parent}`, without X-Frame-Options?); the frame has:\n{}",
            frame_state(&browser).await
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(browser.document_url().await.as_str(), format!("{dashboard}/login"), "the frame's address");

    // Log in, inside the frame.
    browser.fill("#login-form", "password", DASHBOARD_PASSWORD).await;
    browser.submit("#login-form").await;
    assert_eq!(
        browser.document_url().await.as_str(),
        format!("{dashboard}/"),
        "logging in inside the frame did not lead to the Overview (the login or session cookie \
         was not sent in the frame: is it `SameSite=None; Secure; Partitioned` over HTTPS?); the frame has:\n{}",
        frame_state(&browser).await
    );
    browser.find("#nav").await;

    // Keys: one added, then listed (masked) in the frame.
    browser.follow("#nav a[href=\"/keys\"]").await;
    let keys_page = format!("{dashboard}/keys");
    assert_eq!(browser.document_url().await.as_str(), keys_page, "the frame has:\n{}", frame_state(&browser).await);
    let key = test_key(1);
    browser.fill("#keys-add-form", "keys", &key).await;
    browser.submit("#keys-add-form").await;
    assert_eq!(
        browser.document_url().await.as_str(),
        keys_page,
        "adding a key inside the frame failed; the frame has:\n{}",
        frame_state(&browser).await
    );
    let table = browser.find("#keys-table").await.text().await;
    let masked = ApiKey::new(key.as_str()).masked();
    assert!(table.contains(&masked), "#keys-table in the frame lacks {masked}:\n{table}");
    assert!(!browser.source().await.contains(&key), "the whole key is in the framed page's source");

    // The parent page with the framed Keys page, the frame as tall as it.
    let height = browser.execute("return document.documentElement.scrollHeight", vec![]).await;
    browser.enter_parent_frame().await;
    assert_eq!(browser.current_url().await, top, "the top page changed");
    browser.execute("document.getElementById('space').style.height = arguments[0] + 'px'", vec![height]).await;
    screenshot(&browser, "framed").await;

    browser.close().await;
    drop(nginx);
    eprintln!("the framed dashboard test took {:.1} s", started.elapsed().as_secs_f64());
}
