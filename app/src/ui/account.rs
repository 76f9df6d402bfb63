//! Signing in, at the top of the page: `Sign in` (when a provider is configured) opening one
//! `Continue with <label>` link per provider; signed in, `Account` opening a menu with the
//! email, `Sign out` and `Sign out everywhere` (plain form posts to `/auth/…`); and why the
//! last sign-in failed, as an alert.

use leptos::prelude::*;

use crate::{
    account::{AccountView, ProviderChoice},
    error::AppError,
    model::SiteInfo,
};

/// The sign-in button or the account menu, and the last sign-in's failure.
#[component]
pub fn AccountMenu(info: OnceResource<Result<SiteInfo, AppError>>) -> impl IntoView {
    let open = RwSignal::new(false);
    let dismissed = RwSignal::new(false);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                info.try_get()
                    .flatten()
                    .and_then(Result::ok)
                    .map(|i| {
                        let failure = i.sign_in.failure.clone();
                        let control = match i.sign_in.account {
                            Some(account) => account_menu(account, open).into_any(),
                            None if !i.sign_in.providers.is_empty() => {
                                sign_in_menu(i.sign_in.providers, open).into_any()
                            }
                            None => ().into_any(),
                        };
                        view! {
                            {control}
                            {failure
                                .filter(|_| !dismissed.get())
                                .map(|sentence| {
                                    view! {
                                        <div class="alert sign-in-failure" role="alert">
                                            <span>{sentence}</span>
                                            <button
                                                type="button"
                                                class="retry"
                                                on:click=move |_| dismissed.set(true)
                                            >
                                                "Dismiss"
                                            </button>
                                        </div>
                                    }
                                })}
                        }
                    })
            }}
        </Suspense>
    }
}

/// `Sign in`, and the providers it offers.
fn sign_in_menu(providers: Vec<ProviderChoice>, open: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="account">
            <button
                type="button"
                class="account-button"
                aria-haspopup="true"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                "Sign in"
            </button>
            <Show when=move || open.get()>
                <ul class="account-popover" aria-label="Sign in with">
                    {providers
                        .iter()
                        .map(|p| {
                            view! {
                                <li>
                                    <a class="provider" href=format!("/auth/login/{}", p.name)>
                                        "Continue with "
                                        {p.label.clone()}
                                    </a>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </Show>
        </div>
    }
}

/// `Account`, and its menu.
fn account_menu(account: AccountView, open: RwSignal<bool>) -> impl IntoView {
    let who = account.email.clone().or(account.name.clone()).unwrap_or_else(|| "Signed in".into());
    let via_proxy = account.via_proxy;
    view! {
        <div class="account">
            <button
                type="button"
                class="account-button"
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >
                "Account"
            </button>
            <Show when=move || open.get()>
                <div class="account-popover" role="menu" aria-label="Account">
                    <p class="account-email">{who.clone()}</p>
                    {if via_proxy {
                        view! { <p class="muted">"Signed in by this site's sign-in proxy."</p> }
                            .into_any()
                    } else {
                        view! {
                            <form method="post" action="/auth/sign-out">
                                <button type="submit" role="menuitem">
                                    "Sign out"
                                </button>
                            </form>
                            <form method="post" action="/auth/sign-out-everywhere">
                                <button type="submit" role="menuitem">
                                    "Sign out everywhere"
                                </button>
                            </form>
                        }
                            .into_any()
                    }}
                </div>
            </Show>
        </div>
    }
}
