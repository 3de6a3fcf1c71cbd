//! The rules the server enforces, stated in `/openapi.json` where the handlers' annotations
//! do not: the shape of every path parameter, header and query parameter by its name, the
//! answers every route can give besides its own (401, 413, 415, 429, 500, 503), which bodies
//! may be left out, each card operation's reason codes, and the PI rules that span fields.
//!
//! A client generating requests from the document (schemathesis in `.ci/run`) then sends
//! only what the server accepts when it means to, and knows every answer it can get.

use d1_domain::card::lifecycle::CardOperation;
use serde_json::{json, Map, Value};

/// `consumerId`, `accountId`, `operationId`, `Idempotency-Key` and the v2 `x-correlation-id`.
const ID: &str = "^[A-Za-z0-9_-]{1,64}$";
/// `cardId`, `cardProductId`, `newCardId`.
const CARD_ID: &str = "^[A-Za-z0-9_-]{1,48}$";
const ISSUER_ID: &str = "^[A-Za-z0-9]{10}$";
const USER_ID: &str = "^[A-Za-z0-9_-]{1,15}$";
/// The v1 `x-correlation-id` also holds `.` and spaces; HTTP drops a header's leading and
/// trailing spaces, so the document asks for a value that neither starts nor ends with one.
const V1_CORRELATION: &str = "^[A-Za-z0-9_.-]([A-Za-z0-9_. -]{0,62}[A-Za-z0-9_.-])?$";
/// Names (`firstName`, `middleName`, `lastName`) and, with 1 to 40, `title`. The service takes
/// every Unicode letter and digit (`\p{L}\p{N}`), but a schema's pattern must compile in every
/// regular-expression dialect its readers use, and Python's (openapi-spec-validator,
/// schemathesis) has no `\p{…}` classes: the document states ASCII, the letters of Latin-1 and
/// Latin Extended-A and B, and Arabic.
const NAME: &str =
    r"^[A-Za-z0-9\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0600-\u06FF ,.'_#;:/-]{1,128}$";
const TITLE: &str =
    r"^[A-Za-z0-9\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0600-\u06FF ,.'_#;:/-]{1,40}$";
/// The enrolment's `cardholderName`.
const DIRECTORY_NAME: &str =
    r"^[A-Za-z0-9\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0600-\u06FF ,.'_#;:/-]{1,26}$";
/// Address lines, city, state, zip code: 1 to 128 characters without control characters.
const FREE_TEXT: &str = r"^[^\u0000-\u001F\u007F-\u009F]{1,128}$";
/// A date of birth: a real date from 1900 on.
const BIRTH_YEAR: &str = "^(19|[2-9][0-9])[0-9]{2}-";
/// A compact JWE: five base64url parts.
const JWE: &str =
    r"^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$";

/// The served document: `doc` with the rules added.
#[must_use]
pub fn declared(doc: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        bodies(schemas);
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if let Some(operation) = operation.as_object_mut() {
                    route(path, method, operation);
                }
            }
        }
    }
    doc
}

fn string(pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern})
}

/// A property of a component schema, if both exist.
fn property<'a>(
    schemas: &'a mut Map<String, Value>,
    schema: &str,
    name: &str,
) -> Option<&'a mut Value> {
    schemas
        .get_mut(schema)?
        .get_mut("properties")?
        .get_mut(name)
}

/// Whether a property's schema admits `null` (an optional field: `null` reads as absent).
fn nullable(schema: &Value) -> bool {
    let null = |t: &Value| t == "null" || t.get("type").is_some_and(|t| t == "null");
    schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(null))
        || schema["oneOf"]
            .as_array()
            .is_some_and(|o| o.iter().any(null))
}

/// Replaces a property's schema by `value`, keeping whether it admits `null`.
fn set(schemas: &mut Map<String, Value>, schema: &str, name: &str, mut value: Value) {
    if let Some(slot) = property(schemas, schema, name) {
        if nullable(slot) {
            value["type"] = json!([value["type"].clone(), "null"]);
            if let Some(values) = value.get_mut("enum").and_then(Value::as_array_mut) {
                values.push(Value::Null);
            }
        }
        *slot = value;
    }
}

/// The body rules: id patterns, enums, the PI rules that span fields.
fn bodies(schemas: &mut Map<String, Value>) {
    for (schema, field, pattern) in [
        ("RegisterCardRequest", "consumerId", ID),
        ("RegisterCardRequest", "cardProductId", CARD_ID),
        ("RegisterCardRequest", "encryptedData", JWE),
        ("CreateCardRequest", "consumerId", ID),
        ("CreateCardRequest", "cardProductId", CARD_ID),
        ("V1CardRequest", "cardId", CARD_ID),
        ("V1CardRequest", "accountId", ID),
        ("V1CardRequest", "cardProductId", CARD_ID),
        ("V1CardRequest", "encryptedData", JWE),
        ("RenewCardRequest", "encryptedData", JWE),
        ("ReplaceCardRequest", "encryptedData", JWE),
        ("ReplaceCardRequest", "newCardId", CARD_ID),
        ("EnrolmentRequest", "cardholderName", DIRECTORY_NAME),
        (
            "PersonalInformationDto",
            "language",
            "^[a-z]{2}-[a-zA-Z]{2}$",
        ),
        ("PersonalInformationDto", "title", TITLE),
        ("PersonalInformationDto", "firstName", NAME),
        ("PersonalInformationDto", "middleName", NAME),
        ("PersonalInformationDto", "lastName", NAME),
        ("AddressDto", "line1", FREE_TEXT),
        ("AddressDto", "line2", FREE_TEXT),
        ("AddressDto", "line3", FREE_TEXT),
        ("AddressDto", "city", FREE_TEXT),
        ("AddressDto", "state", FREE_TEXT),
        ("AddressDto", "zipCode", "^[A-Za-z0-9 -]{1,16}$"),
    ] {
        set(schemas, schema, field, string(pattern));
    }
    set(
        schemas,
        "PersonalInformationDto",
        "dateOfBirth",
        json!({"type": "string", "format": "date", "pattern": BIRTH_YEAR, "example": "1990-04-01"}),
    );
    set(
        schemas,
        "PersonalInformationDto",
        "email",
        json!({"type": "string", "format": "email", "maxLength": 254}),
    );
    // At least one field that is not `null`: PI made of nulls alone holds nothing.
    if let Some(pi) = schemas.get_mut("PersonalInformationDto") {
        let fields: Vec<String> = pi["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        pi["anyOf"] = fields
            .iter()
            .map(
                |f| json!({"required": [f], "properties": {f.as_str(): {"not": {"type": "null"}}}}),
            )
            .collect();
    }
    set(
        schemas,
        "AddressDto",
        "countryCode",
        json!({"type": "string", "enum": &d1_domain::country::CODES[..], "example": "FR"}),
    );
    // A calling code of n digits leaves 15 - n for the number (E.164), and never starts with 0.
    if let Some(phone) = schemas.get_mut("PhoneDto") {
        phone["anyOf"] = json!([1, 2, 3].map(|n: usize| json!({"properties": {
            "countryCode": string(&format!(r"^\+?[1-9][0-9]{{{}}}$", n - 1)),
            "phoneNumber": string(&format!("^[0-9]{{4,{}}}$", 15 - n)),
        }})));
    }
    for (schema, field, values) in [
        ("RegisterCardRequest", "state", &["ACTIVE", "INACTIVE"][..]),
        ("CreateCardRequest", "state", &["ACTIVE", "INACTIVE"]),
        ("V1CardRequest", "state", &["ACTIVE", "INACTIVE"]),
        (
            "DeleteConsumerRequest",
            "reasonCode",
            &["USER_DECISION", "ISSUER_DECISION"],
        ),
        (
            "EnrolmentRequest",
            "reasonCode",
            &["USER_DECISION", "ISSUER_DECISION"],
        ),
    ] {
        set(
            schemas,
            schema,
            field,
            json!({"type": "string", "enum": values}),
        );
    }
    if let Some(default) = property(schemas, "AccountDto", "default") {
        *default = json!({"type": "boolean", "description": "May be left out, but not `null`."});
    }
    if let Some(cards) = property(schemas, "V1CardsRequest", "cards") {
        cards["minItems"] = json!(1);
        cards["maxItems"] = json!(100);
    }
}

/// What a parameter named `name` in `location` accepts, on a route under `path`.
fn parameter_schema(path: &str, location: &str, name: &str) -> Option<Value> {
    let v1 = path.starts_with("/banking/v1/");
    let schema = match (location, name) {
        ("path", "issuerId") => string(ISSUER_ID),
        ("path", "consumerId" | "operationId") | ("header", "Idempotency-Key") => string(ID),
        ("path", "cardId") => string(CARD_ID),
        ("header", "x-correlation-id") if v1 => string(V1_CORRELATION),
        ("header", "x-correlation-id") => string(ID),
        ("header", "x-user-id") => string(USER_ID),
        ("query", "limit") => json!({"type": "integer", "minimum": 1, "maximum": 200}),
        ("query", "cursor") => json!({"type": "integer", "minimum": 1, "maximum": i64::MAX}),
        // Past the end of any trail is an empty page, however far.
        ("query", "offset") => json!({"type": "integer", "minimum": 0}),
        ("query", "count") => json!({"type": "integer", "minimum": 1, "maximum": 100}),
        _ => return None,
    };
    Some(schema)
}

/// The error body a route answers in: the one of its 400 (v1 or v2), else the v2 body.
fn error_body(operation: &Map<String, Value>) -> Value {
    operation
        .get("responses")
        .and_then(|r| r.get("400"))
        .and_then(|r| r.pointer("/content/application~1json/schema"))
        .cloned()
        .unwrap_or_else(|| json!({"$ref": "#/components/schemas/ErrorBody"}))
}

fn answer(description: &str, body: &Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": body}}})
}

/// The card operation a path names (`…/cards/{cardId}/operations:suspend`), if any.
fn card_operation(path: &str) -> Option<CardOperation> {
    let name = path
        .strip_prefix("/banking/")?
        .split("/cards/{cardId}/operations")
        .nth(1)?;
    CardOperation::parse(name.strip_prefix([':', '/'])?)
}

/// Paths whose body may be left out (contract sections 5, 7 and 9).
fn optional_body(path: &str, method: &str) -> bool {
    let consumer = path.ends_with("/consumers/{consumerId}");
    let delete = path.ends_with("/consumers/{consumerId}/operations:delete")
        || path.ends_with("/consumers/{consumerId}/operations/delete");
    (consumer && method == "put") || delete || path.contains("clickToPayEnrolment")
}

fn route(path: &str, method: &str, operation: &mut Map<String, Value>) {
    if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
        for parameter in parameters.iter_mut() {
            let location = parameter["in"].as_str().unwrap_or_default().to_owned();
            let name = parameter["name"].as_str().unwrap_or_default().to_owned();
            if let Some(schema) = parameter_schema(path, &location, &name) {
                parameter["schema"] = schema;
            }
        }
    }
    if let Some(op) = card_operation(path) {
        if let Some(body) = operation.get_mut("requestBody") {
            let required = op.default_code().is_none();
            let mut codes: Vec<Value> = op.codes().iter().map(|c| json!(c.as_str())).collect();
            let mut kind = json!("string");
            if !required {
                codes.push(Value::Null);
                kind = json!(["string", "null"]);
            }
            body["required"] = json!(required);
            let schema = body.pointer_mut("/content/application~1json/schema");
            if let Some(schema) = schema {
                let base = schema.clone();
                *schema = json!({"allOf": [base, {
                    "type": "object",
                    "properties": {"reasonCode": {"type": kind, "enum": codes}},
                    "required": if required { json!(["reasonCode"]) } else { json!([]) },
                }]});
            }
        }
    } else if let Some(body) = operation.get_mut("requestBody") {
        if optional_body(path, method) {
            body["required"] = json!(false);
        }
    }
    // A body may be left out where it is optional, but a body of `null` is not an object.
    if let Some(schema) = operation
        .get_mut("requestBody")
        .and_then(|b| b.pointer_mut("/content/application~1json/schema"))
    {
        let object = schema["oneOf"]
            .as_array()
            .and_then(|o| o.iter().find(|s| s.get("type").is_none_or(|t| t != "null")))
            .cloned();
        if let Some(object) = object {
            *schema = object;
        }
    }
    if !path.starts_with("/banking/") && !path.starts_with("/authz/") {
        return;
    }
    let error = error_body(operation);
    let has_body = operation.contains_key("requestBody");
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    if path.starts_with("/banking/") {
        let mut unauthorized = answer(
            "no valid token, or a token of another issuer (or aggregator) than the path's",
            &json!({"$ref": "#/components/schemas/BareErrorBody"}),
        );
        unauthorized["headers"] = json!({"WWW-Authenticate": {
            "description": "`Bearer error=\"invalid_token\"` when a token was sent, `Bearer` when none was",
            "schema": {"type": "string"},
        }});
        let declared = responses.entry("401").or_insert(unauthorized.clone());
        declared["headers"] = unauthorized["headers"].take();
    }
    let mut add = |status: &str, response: Value| {
        responses.entry(status).or_insert(response);
    };
    if has_body {
        add("413", answer("the body is over the limit", &error));
        add(
            "415",
            answer("the body is not of a supported media type", &error),
        );
    }
    let mut limited = answer("over the rate limit (`RATE_LIMITED`)", &error);
    limited["headers"] = json!({"Retry-After": {
        "description": "seconds to wait", "required": true, "schema": {"type": "string"},
    }});
    add("429", limited);
    add("500", answer("not written (`INTERNAL_ERROR`)", &error));
    add(
        "503",
        answer(
            "`TIMEOUT` (outcome unknown) or `OVERLOADED` (not written, with `Retry-After`)",
            &error,
        ),
    );
}
