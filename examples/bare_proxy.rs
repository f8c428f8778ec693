//! The stack's own ceiling, for `scripts/bench.sh`: a reverse proxy that
//! does nothing but forward (no auth, limits, keys, conversion, metrics or
//! log), like the nginx hop, so the bench can tell what the HTTP layer
//! costs from what hajimi's own work costs.
//!
//! `STACK=actix` (default): actix-web server, awc client (hajimi's stack).
//! `STACK=hyper`: hyper 1 server, hyper-util's pooled client.
//!
//! Listens on `PORT` (default 9300) on 127.0.0.1 with one thread and
//! forwards every request's method, path, query, body, `content-type` and
//! `x-goog-api-key` to `UPSTREAM` (default `http://127.0.0.1:9100`),
//! streaming the answer back as it arrives.

use bytes::Bytes;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(9300);
    let upstream = std::env::var("UPSTREAM").unwrap_or_else(|_| "http://127.0.0.1:9100".to_owned());
    match std::env::var("STACK").as_deref().unwrap_or("actix") {
        "actix" => actix(port, upstream),
        "hyper" => hyper(port, upstream),
        other => Err(std::io::Error::other(format!("STACK={other}: actix or hyper"))),
    }
}

const FORWARDED: [&str; 2] = ["content-type", "x-goog-api-key"];

fn actix(port: u16, upstream: String) -> std::io::Result<()> {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

    async fn forward(
        request: HttpRequest,
        body: Bytes,
        upstream: web::Data<String>,
        client: web::Data<awc::Client>,
    ) -> HttpResponse {
        let uri = request.uri();
        let target = format!("{}{}", upstream.get_ref(), uri.path_and_query().map_or("/", |p| p.as_str()));
        let mut outgoing = client.request(request.method().clone(), target);
        for name in FORWARDED {
            if let Some(value) = request.headers().get(name) {
                outgoing = outgoing.insert_header((name, value.clone()));
            }
        }
        match outgoing.send_body(body).await {
            Ok(answer) => {
                let mut response = HttpResponse::build(answer.status());
                if let Some(kind) = answer.headers().get("content-type") {
                    response.insert_header(("content-type", kind.clone()));
                }
                response.streaming(answer)
            }
            Err(error) => HttpResponse::BadGateway().body(error.to_string()),
        }
    }

    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(upstream.clone()))
                .app_data(web::Data::new(awc::Client::default()))
                .default_service(web::to(forward))
        })
        .workers(1)
        .tcp_nodelay(true)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}

fn hyper(port: u16, upstream: String) -> std::io::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::{Request, Response};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    type Upstream = Client<HttpConnector, Full<Bytes>>;

    async fn forward(
        request: Request<Incoming>,
        upstream: &str,
        client: Upstream,
    ) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
        // An error (the client's body, the upstream) closes the connection.
        let (head, body) = request.into_parts();
        let target = format!("{upstream}{}", head.uri.path_and_query().map_or("/", |p| p.as_str()));
        let body = body.collect().await?.to_bytes();
        let mut outgoing = Request::builder().method(head.method).uri(target);
        for name in FORWARDED {
            if let Some(value) = head.headers.get(name) {
                outgoing = outgoing.header(name, value.clone());
            }
        }
        let (head, body) = client.request(outgoing.body(Full::new(body))?).await?.into_parts();
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        for name in ["content-type", "content-length"] {
            if let Some(value) = head.headers.get(name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let upstream: &'static str = Box::leak(upstream.into_boxed_str());
        let client: Upstream = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        loop {
            let (socket, _) = listener.accept().await?;
            socket.set_nodelay(true)?;
            let client = client.clone();
            tokio::task::spawn(async move {
                let service = hyper::service::service_fn(move |request| forward(request, upstream, client.clone()));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
            });
        }
    })
}
