//! Micro-benchmarks of the per-request work on realistic bodies: finding `model` and routing,
//! the model override splice, client auth, and the stream translators (500-event replies).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use tollgate::auth::{hash_key, KeyStore};
use tollgate::config::{Config, KeySpec};
use tollgate::gateway::{probe, with_model};
use tollgate::route::Router;

fn chat_body(len: usize) -> Bytes {
    let mut v = json!({
        "messages": [{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": ""}],
        "temperature": 0.2, "stream": true, "model": "gpt-4o-mini",
    });
    let filler = "The quick brown fox jumps over the lazy dog. \"quoted\" ".repeat(len / 54 + 1);
    v["messages"][1]["content"] = json!(filler[..len.saturating_sub(160)]);
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

fn router() -> Router {
    let mut src = String::from(
        "[[backends]]\nname = \"a\"\nprovider = \"openai\"\nurl = \"http://127.0.0.1:1\"\n",
    );
    for i in 0..50 {
        src += &format!("[[routes]]\nmodels = [\"model-{i}\", \"family-{i}-*\"]\ntargets = [{{ backend = \"a\" }}]\n");
    }
    src += "[[routes]]\nmodels = [\"gpt-4o-mini\"]\ntargets = [{ backend = \"a\" }]\n";
    let cfg = Config::from_str_with_env(&src, &|_| None).unwrap();
    Router::new(&cfg, |_| true)
}

fn parse_and_route(c: &mut Criterion) {
    let r = router();
    let mut g = c.benchmark_group("parse_and_route");
    for len in [1024usize, 100 * 1024] {
        let body = chat_body(len);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &body, |b, body| {
            b.iter(|| {
                let p = probe(black_box(body)).unwrap();
                black_box(r.find(&p.model).is_some())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("model_override_splice");
    for len in [1024usize, 100 * 1024] {
        let body = chat_body(len);
        let span = probe(&body).unwrap().model_span;
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &body, |b, body| {
            b.iter(|| black_box(with_model(body, &span, "llama3")))
        });
    }
    g.finish();
    c.bench_function("route_glob_miss_51_routes", |b| {
        b.iter(|| black_box(r.find(black_box("family-49-x")).is_some()))
    });
}

fn auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("auth_bearer");
    for n in [1usize, 100] {
        let keys: Vec<KeySpec> = (0..n)
            .map(|i| {
                let mut h = [0u8; 32];
                hex::decode_to_slice(hash_key(&format!("sk-key-{i}")), &mut h).unwrap();
                KeySpec {
                    name: format!("k{i}"),
                    sha256: h,
                    user: None,
                    team: None,
                    ..Default::default()
                }
            })
            .collect();
        let store = KeyStore::new(&keys, None);
        let header = format!("Bearer sk-key-{}", n - 1);
        g.bench_with_input(BenchmarkId::from_parameter(n), &header, |b, h| {
            b.iter(|| black_box(store.authenticate(Some(h.as_bytes()), None).unwrap()))
        });
    }
    g.finish();
}

/// Admission under limits: a reservation on a key's token and request limits, then its
/// settlement, with 1 and 10,000 keys sharing the in-memory counters.
fn admission(c: &mut Criterion) {
    use std::sync::Arc;
    use tollgate::clock::Period;
    use tollgate::limits::counters::Local;
    use tollgate::limits::{Cap, Demand, LimitSpec, Limiter, Measure, Scope, Subject};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let spec = LimitSpec {
        scope: Scope::Key,
        matching: None,
        caps: vec![
            Cap {
                measure: Measure::Requests,
                period: Period::Minute,
                limit: 1e12,
            },
            Cap {
                measure: Measure::Tokens,
                period: Period::Minute,
                limit: 1e15,
            },
        ],
    };
    let mut g = c.benchmark_group("admission");
    for n in [1usize, 10_000] {
        let limiter = Limiter::new(vec![spec.clone()], Arc::new(Local::default()), true);
        let names: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();
        let demand = Demand {
            tokens: 1100.0,
            cost: 0.0,
        };
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                let who = Subject {
                    key: Some(&names[i]),
                    ..Default::default()
                };
                rt.block_on(async {
                    let r = limiter.admit(&who, false, demand).await.unwrap();
                    limiter
                        .settle(
                            r,
                            Demand {
                                tokens: 300.0,
                                cost: 0.0,
                            },
                        )
                        .await;
                })
            })
        });
    }
    g.finish();
}

/// The prompt estimate limits reserve: tiktoken (o200k) for an OpenAI model, chars ÷ 4 else.
fn prompt_estimate(c: &mut Criterion) {
    let body = chat_body(1024);
    tollgate::limits::estimate::warm(["gpt-4o-mini"]);
    let mut g = c.benchmark_group("prompt_estimate_1KiB");
    for model in ["gpt-4o-mini", "claude-sonnet-4-5"] {
        g.bench_function(model, |b| {
            b.iter(|| black_box(tollgate::limits::estimate::prompt_tokens(&body, model)))
        });
    }
    g.finish();
    // Never seen before (a counter starts each prompt, so no count is remembered): prose; a
    // run of one letter, which the split leaves as one piece for the merges; random letters and
    // base64, which are few whole tokens; and a 1 MiB body of random letters, bounded by
    // `TOKENIZE_BODY_BYTES`.
    let mut g = c.benchmark_group("prompt_estimate_unseen");
    let mut n = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = |alphabet: &[u8], len: usize| -> String {
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                alphabet[(x >> 33) as usize % alphabet.len()] as char
            })
            .collect()
    };
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let base64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (name, text) in [
        (
            "prose_1KiB",
            "The quick brown fox jumps over the lazy dog. ".repeat(23),
        ),
        ("one_letter_1KiB", "x".repeat(1024)),
        ("one_letter_8KiB", "x".repeat(8 * 1024)),
        ("random_letters_1KiB", random(letters, 1024)),
        ("base64_1KiB", random(base64, 1024)),
        ("random_letters_1MiB_body", random(letters, 1 << 20)),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    // A long text is sent as strings of 8 KiB, as an agent's many messages.
                    let messages: Vec<_> = (text.as_bytes().chunks(8 << 10))
                        .map(|c| {
                            let c = std::str::from_utf8(c).unwrap_or_default();
                            json!({"role": "user", "content": format!("{n} {c}")})
                        })
                        .collect();
                    serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": messages}))
                        .unwrap_or_default()
                },
                |body| {
                    black_box(tollgate::limits::estimate::prompt_tokens(
                        &body,
                        "gpt-4o-mini",
                    ))
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, parse_and_route, auth, admission, prompt_estimate);

#[path = "../tests/common/streams.rs"]
mod streams;

/// Each stream translator on a 500-event reply delivered in 1 KiB pieces.
fn stream_translators(c: &mut Criterion) {
    use tollgate::formats::{Format, ReplyContext};
    use tollgate::stream::Translator;
    let ctx = ReplyContext {
        client_model: "client-model",
        created: 1_700_000_000,
        tool_names: None,
    };
    for (name, from, to, input) in [
        (
            "anthropic_to_openai",
            Format::Anthropic,
            Format::OpenAi,
            streams::anthropic(500).into_bytes(),
        ),
        (
            "openai_to_anthropic",
            Format::OpenAi,
            Format::Anthropic,
            streams::openai(500).into_bytes(),
        ),
        (
            "gemini_to_openai",
            Format::Gemini,
            Format::OpenAi,
            streams::gemini(500).into_bytes(),
        ),
        (
            "bedrock_to_openai",
            Format::Bedrock,
            Format::OpenAi,
            streams::bedrock(500),
        ),
        (
            "bedrock_to_anthropic",
            Format::Bedrock,
            Format::Anthropic,
            streams::bedrock(500),
        ),
    ] {
        let pieces = streams::bytes_pieces(&input, 1024);
        let mut g = c.benchmark_group(format!("stream_translate_{name}"));
        for (unit, t) in [
            ("events", Throughput::Elements(500)),
            ("bytes", Throughput::Bytes(input.len() as u64)),
        ] {
            g.throughput(t);
            g.bench_function(unit, |b| {
                let mut out = bytes::BytesMut::with_capacity(64 * 1024);
                b.iter(|| {
                    let mut t = Translator::new(from, to, &ctx, true);
                    for p in &pieces {
                        t.push(p, &mut out).unwrap();
                        out.clear();
                    }
                    black_box(t.finish(&mut out).is_ok())
                })
            });
        }
        g.finish();
    }
}

/// Bedrock's event-stream framing alone (CRC checks, header parsing) on a 500-event reply.
fn eventstream_frames(c: &mut Criterion) {
    use tollgate::formats::framing::eventstream::FrameDecoder;
    let input = streams::bedrock(500);
    let pieces = streams::bytes_pieces(&input, 1024);
    let mut g = c.benchmark_group("eventstream_decode");
    g.throughput(Throughput::Elements(500));
    g.bench_function("events", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::default();
            let mut n = 0usize;
            for p in &pieces {
                d.push(p, |f| {
                    n += f.payload.len();
                    Ok(())
                })
                .unwrap();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(streams_group, stream_translators, eventstream_frames);
criterion_main!(benches, streams_group, translate_group, ledger_group);

/// Translating a complete 1 KiB chat request and a reply, each direction.
fn translate_whole(c: &mut Criterion) {
    use tollgate::formats::{
        translate_request, translate_response, Format, MaxTokensField, ReplyContext, RequestOptions,
    };
    let opts = RequestOptions {
        model: "claude",
        default_max_tokens: 4096,
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        cache_points: false,
        fields: Default::default(),
    };
    let ctx = ReplyContext {
        client_model: "client-model",
        created: 1_700_000_000,
        tool_names: None,
    };
    let chat = chat_body(1024);
    let anthropic_reply = serde_json::to_vec(&json!({"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude", "content": [{"type": "text",
        "text": "the gateway routes every request to a provider and streams tokens back"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 250, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": 16}}))
    .unwrap();
    let mut g = c.benchmark_group("translate_whole");
    g.bench_function("request_chat_to_anthropic_1k", |b| {
        b.iter(|| translate_request(Format::OpenAi, Format::Anthropic, black_box(&chat), &opts))
    });
    g.bench_function("reply_anthropic_to_chat", |b| {
        b.iter(|| {
            translate_response(
                Format::Anthropic,
                Format::OpenAi,
                black_box(&anthropic_reply),
                &ctx,
            )
        })
    });
    g.finish();
}

criterion_group!(translate_group, translate_whole);

/// The ledger writer's inserts: 1,024 rows in one transaction (what one flush writes under
/// load), 32 to a statement, each value bound in place (`store::insert`); `insert_rows`
/// prepares its two statements per call, which the writer does once.
fn ledger_insert(c: &mut Criterion) {
    use tollgate::store::insert::insert_rows;
    use tollgate::store::schema::{LedgerRow, SCHEMA};
    let rows: Vec<LedgerRow> = (0..1024)
        .map(|i| LedgerRow {
            ts_ms: i,
            request_id: format!("{i:032x}"),
            key: Some("team-a".into()),
            route: Some("openai".into()),
            requested_model: Some("gpt-4o-mini".into()),
            served_model: Some("gpt-4o-mini".into()),
            backend: Some("openai".into()),
            input_tokens: 300,
            output_tokens: 40,
            total_tokens: 340,
            cost_usd: 0.0001,
            status: 200,
            latency_ms: 0.4,
            ..LedgerRow::default()
        })
        .collect();
    let mut g = c.benchmark_group("ledger_insert_1024_rows");
    g.throughput(Throughput::Elements(rows.len() as u64));
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    g.bench_function("one_transaction", |b| {
        b.iter(|| {
            let tx = conn.transaction().unwrap();
            insert_rows(&tx, black_box(&rows)).unwrap();
            tx.rollback().unwrap();
        })
    });
    g.finish();
}

criterion_group!(ledger_group, ledger_insert);
