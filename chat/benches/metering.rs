//! What metering and budgets add to one chat turn, as [`parley_chat::Engine::turn`] does them:
//! whom it is charged to (`charge_for`), the check before anything is asked of Gemini, the
//! reservation, and the settlement (the ledger of the session, the address and the site) with
//! the page's view of what is left. Gemini itself is not called: these are the store round
//! trips a turn gains. A benchmark that prints figures, not a test:
//!
//! ```text
//! cargo bench -p parley-chat --bench metering
//! PARLEY_BENCH_DATABASE_URL=postgres://… cargo bench -p parley-chat --bench metering
//! ```
//!
//! Each case runs one turn at a time, then sixteen at once, over 400 anonymous sessions behind
//! 50 addresses, on a ledger already holding a month of other days' rows.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use parley_chat::budget::{BudgetConfig, BudgetSetting, Budgets, Meter, Prices};
use parley_store::{usage::DAY_MS, ClientAddress, Principal, Scope, SessionId, Store, Usage};

const TURNS: usize = 2_000;
const AT_ONCE: usize = 16;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let sqlite = Store::open(temp.path()).unwrap();
    run(&runtime, sqlite, "SQLite");
    if let Ok(url) = std::env::var("PARLEY_BENCH_DATABASE_URL") {
        let store = runtime.block_on(Store::connect(&url.parse().unwrap())).unwrap();
        run(&runtime, store, "PostgreSQL");
    }
}

fn run(runtime: &tokio::runtime::Runtime, store: Store, backend: &str) {
    runtime.block_on(fill(&store));
    let setting = |text: &str| text.parse::<BudgetSetting>().unwrap();
    let cases = [
        ("metered, no budget", BudgetConfig { site: setting("off"), ..BudgetConfig::default() }),
        (
            "$0.25/day anonymous, $1000/day site",
            BudgetConfig {
                anonymous: setting("$0.25/day"),
                site: setting("$1000/day"),
                ..BudgetConfig::default()
            },
        ),
    ];
    for (name, config) in cases {
        let budgets = Budgets::new(
            store.clone(),
            Prices::load(None).unwrap(),
            config,
            Arc::new(parley_files::time::now_ms),
        );
        let one = runtime.block_on(turns(&budgets, TURNS, 1));
        let many = runtime.block_on(turns(&budgets, TURNS, AT_ONCE));
        println!(
            "metering on {backend}, {name}: one at a time p50 {:.3} ms, p99 {:.3} ms; \
             {AT_ONCE} at once p50 {:.3} ms, p99 {:.3} ms ({TURNS} turns each)",
            ms(one[one.len() / 2]),
            ms(one[one.len() * 99 / 100]),
            ms(many[many.len() / 2]),
            ms(many[many.len() * 99 / 100]),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A month of earlier days in the ledger: 400 sessions, 50 addresses, the site.
async fn fill(store: &Store) {
    let old = parley_files::time::now_ms() - 31 * DAY_MS;
    let usage = Usage {
        calls: 1,
        prompt_tokens: 500,
        output_tokens: 300,
        nano_usd: 900_000,
        ..Usage::default()
    };
    for day in 0..30 {
        for n in 0..400 {
            let scopes = [principal(n).1, address(n), Scope::Site];
            let scopes: Vec<Scope> = scopes.into_iter().collect();
            store
                .settle(None, &scopes, "gemini-2.5-flash", &usage, old + day * DAY_MS)
                .await
                .unwrap();
        }
    }
}

/// The `n`th anonymous session and its ledger scope.
fn principal(n: usize) -> (Principal, Scope) {
    let session = SessionId::parse(&format!("{:032x}", n + 1)).unwrap();
    let scope = Scope::session(&session);
    (Principal::anonymous(session), scope)
}

fn address(n: usize) -> Scope {
    Scope::address(&client(n))
}

fn client(n: usize) -> ClientAddress {
    ClientAddress(format!("198.51.100.{}", n % 50))
}

/// `count` turns' metering, `at_once` at a time: each one's time, sorted.
async fn turns(budgets: &Budgets, count: usize, at_once: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(count);
    for wave in 0..count / at_once {
        let turns = (0..at_once).map(|i| {
            let budgets = budgets.clone();
            let n = (wave * at_once + i) % 400;
            tokio::spawn(async move { turn(&budgets, n).await })
        });
        for time in futures::future::join_all(turns).await {
            times.push(time.unwrap());
        }
    }
    times.sort();
    times
}

/// One turn's metering: 500 prompt tokens, 300 out.
async fn turn(budgets: &Budgets, n: usize) -> Duration {
    let (principal, _) = principal(n);
    let started = Instant::now();
    let charge = budgets.charge_for(&principal, &client(n)).await.unwrap();
    budgets.check(&charge).await.unwrap();
    let held = budgets.reserve(&charge, "gemini-2.5-flash", 500, 65_536).await.unwrap();
    let mut meter = Meter::new(budgets.clone(), charge, held, "gemini-2.5-flash", 500);
    let usage = gemini::UsageMetadata {
        prompt_token_count: 500,
        candidates_token_count: 300,
        total_token_count: 800,
        ..Default::default()
    };
    meter.received(1_200, Some(&usage));
    meter.finish().await;
    started.elapsed()
}
