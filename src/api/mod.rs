//! HTTP edge: parses requests into domain types, calls one use-case in
//! `registry`, renders the answer. No SQL and no object keys here; every
//! error leaves through `oci_error`.
//!
//! Layering: `api` calls `registry`, and `server` for the zero-copy blob
//! body; nothing calls `api` but `lib.rs`.

pub(crate) mod access;
mod accounts;
// Visible to `api::openapi`, which lists its handlers.
pub(crate) mod admin;
mod base;
mod blobs;
mod catalog;
mod diff;
// Visible to `api::openapi`, which lists its handlers.
pub(crate) mod events;
mod governance;
mod manifests;
pub mod oci_error;
pub(crate) mod openapi;
mod referrers;
pub(crate) mod request;
mod tags;
mod token;
mod uploads;

use actix_web::web;

pub use oci_error::{ApiError, OciCode};

/// Repository names contain slashes, so every route captures `{name:.+}` and
/// the fixed suffix after it decides the endpoint.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/token", web::get().to(token::get)).route("/auth/token", web::post().to(token::post));
    cfg.service(
        web::scope("/api/v1")
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(|e, _| ApiError::bad_request(OciCode::InvalidRequest, format!("body: {e}")).into()),
            )
            .route("/openapi.json", web::get().to(openapi::document))
            .route("/admin/drain", web::get().to(admin::get))
            .route("/admin/drain", web::post().to(admin::drain))
            .route("/admin/drain", web::delete().to(admin::undrain))
            .configure(governance::routes)
            .configure(events::routes)
            .route("/repositories/{name:.+}/diff", web::get().to(diff::get))
            .route("/users", web::post().to(accounts::create_user))
            .route("/users", web::get().to(accounts::list_users))
            .route("/users/{name}", web::delete().to(accounts::delete_user))
            .route("/robots", web::post().to(accounts::create_robot))
            .route("/robots", web::get().to(accounts::list_robots))
            .route("/robots/{name}", web::delete().to(accounts::delete_robot))
            .route("/grants", web::post().to(accounts::create_grant))
            .route("/grants", web::get().to(accounts::list_grants))
            .route("/grants/{id}", web::delete().to(accounts::delete_grant))
            .configure(accounts::lifecycle_routes),
    );
    cfg.service(
        web::scope("/v2")
            .route("", web::get().to(base::version_check))
            .route("", web::head().to(base::version_check))
            .route("/", web::get().to(base::version_check))
            .route("/", web::head().to(base::version_check))
            .route("/_catalog", web::get().to(catalog::list))
            .service(web::resource(["/{name:.+}/blobs/uploads/", "/{name:.+}/blobs/uploads"]).route(web::post().to(uploads::start)))
            .service(
                web::resource("/{name:.+}/blobs/uploads/{id}")
                    .route(web::get().to(uploads::status))
                    .route(web::patch().to(uploads::append))
                    .route(web::put().to(uploads::complete))
                    .route(web::delete().to(uploads::cancel))
                    .default_service(web::to(base::method_not_allowed)),
            )
            .service(
                web::resource("/{name:.+}/blobs/{digest}")
                    .route(web::get().to(blobs::get))
                    .route(web::head().to(blobs::get))
                    .route(web::delete().to(blobs::delete))
                    .default_service(web::to(base::method_not_allowed)),
            )
            .service(
                web::resource("/{name:.+}/manifests/{reference}")
                    .route(web::get().to(manifests::get))
                    .route(web::head().to(manifests::get))
                    .route(web::put().to(manifests::put))
                    .route(web::delete().to(manifests::delete))
                    .default_service(web::to(base::method_not_allowed)),
            )
            .service(
                web::resource("/{name:.+}/tags/list").route(web::get().to(tags::list)).default_service(web::to(base::method_not_allowed)),
            )
            .service(
                web::resource("/{name:.+}/referrers/{digest}")
                    .route(web::get().to(referrers::list))
                    .default_service(web::to(base::method_not_allowed)),
            ),
    )
    .default_service(web::to(base::not_found));
}
