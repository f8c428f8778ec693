//! JSON Schema as Gemini accepts it, for every front door: function
//! parameters cleaned ([`clean_parameters`]: unsupported keywords dropped,
//! `$ref`s expanded within bounds, `allOf` merged, under a [`SchemaBudget`]
//! so no schema can grow without bound), and response schemas stripped of
//! what Gemini refuses ([`remove_unsupported_json_schema_keywords`]).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

/// Schema keywords whose values are maps from names to schemas (the names
/// are kept whatever they are).
const SCHEMA_MAP_KEYWORDS: [&str; 5] = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
/// Schema keywords whose values are data, not schemas.
const SCHEMA_DATA_KEYWORDS: [&str; 5] = ["enum", "const", "default", "examples", "example"];

/// Structured output, whatever the door calls it (chat's `response_format`,
/// the Responses API's `text.format`): JSON (`application/json`), and when
/// a schema is given, constrained by it (`responseJsonSchema`, cleaned of
/// what Gemini refuses).
pub fn apply_json_output(generation_config: &mut crate::gemini::types::GenerationConfig, schema: Option<&Value>) {
    generation_config.response_mime_type = Some("application/json".to_string());
    generation_config.response_json_schema = schema.map(remove_unsupported_json_schema_keywords);
}

/// Removes `$schema`, `$id` and `strict` from a JSON Schema, recursively,
/// without touching property names or literal data.
pub fn remove_unsupported_json_schema_keywords(schema: &Value) -> Value {
    match schema {
        Value::Object(schema_object) => {
            let mut cleaned_object = Map::new();
            for (keyword, value) in schema_object {
                if matches!(keyword.as_str(), "$schema" | "$id" | "strict") {
                    continue;
                }
                let cleaned_value = match value {
                    Value::Object(named_schemas) if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) => Value::Object(
                        named_schemas
                            .iter()
                            .map(|(name, child)| (name.clone(), remove_unsupported_json_schema_keywords(child)))
                            .collect(),
                    ),
                    _ if SCHEMA_DATA_KEYWORDS.contains(&keyword.as_str()) => value.clone(),
                    _ => remove_unsupported_json_schema_keywords(value),
                };
                cleaned_object.insert(keyword.clone(), cleaned_value);
            }
            Value::Object(cleaned_object)
        }
        Value::Array(items) => Value::Array(items.iter().map(remove_unsupported_json_schema_keywords).collect()),
        other => other.clone(),
    }
}

/// A function's JSON Schema parameters cleaned for Gemini, or `None` when
/// the function takes no parameters (Gemini rejects an object schema with
/// empty `properties`).
pub fn clean_parameters(parameters: &Value, budget: &mut SchemaBudget) -> Option<Value> {
    if !parameters.is_object() {
        return None;
    }
    let mut cleaner = GeminiSchemaCleaner::new(parameters, budget);
    let cleaned_parameters = cleaner.clean(parameters, 0, 0);
    let has_properties = cleaned_parameters
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|properties| !properties.is_empty());
    let is_object_schema = matches!(cleaned_parameters.get("type").and_then(Value::as_str), None | Some("object"));
    if is_object_schema && !has_properties {
        return None;
    }
    Some(cleaned_parameters)
}

/// The keywords of Gemini's OpenAPI-subset `Schema`.
pub const GEMINI_SCHEMA_KEYWORDS: [&str; 22] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "anyOf",
    "propertyOrdering",
    "default",
    "example",
];

/// How many `$ref`s may be expanded inside one another (recursive schemas
/// are cut off there).
pub const MAXIMUM_REFERENCE_EXPANSION_DEPTH: usize = 6;
/// How deep schemas may nest at all.
pub const MAXIMUM_SCHEMA_NESTING_DEPTH: usize = 48;
/// How many schema nodes the tools of one request may expand to, and how
/// many bytes of keyword values, so that references to large definitions
/// cannot blow up memory.
pub const MAXIMUM_CLEANED_SCHEMA_NODES: usize = 50_000;
pub const MAXIMUM_CLEANED_SCHEMA_BYTES: usize = 4 * 1024 * 1024;

/// What is left of a request's schema-expansion allowance.
#[derive(Debug)]
pub struct SchemaBudget {
    nodes: usize,
    bytes: usize,
    pub exhausted: bool,
}

impl Default for SchemaBudget {
    fn default() -> Self {
        SchemaBudget { nodes: MAXIMUM_CLEANED_SCHEMA_NODES, bytes: MAXIMUM_CLEANED_SCHEMA_BYTES, exhausted: false }
    }
}

impl SchemaBudget {
    /// Takes one node of `size` bytes; false once the allowance is spent.
    fn take(&mut self, size: usize) -> bool {
        if self.exhausted || self.nodes == 0 || self.bytes < size {
            self.exhausted = true;
            return false;
        }
        self.nodes -= 1;
        self.bytes -= size;
        true
    }
}

/// Bytes a schema node holds itself (keywords and scalar values, not the
/// sub-schemas, which are counted as nodes of their own).
pub fn shallow_size(node: &Map<String, Value>) -> usize {
    fn scalar_size(value: &Value) -> usize {
        match value {
            Value::String(text) => text.len(),
            Value::Array(items) => items.iter().map(scalar_size).sum(),
            Value::Object(_) => 0,
            _ => 8,
        }
    }
    node.iter().map(|(keyword, value)| keyword.len() + scalar_size(value)).sum()
}

/// Rewrites a JSON Schema into Gemini's OpenAPI subset: inlines local
/// `$ref`s (`#/$defs/X`, `#/definitions/X`), merges `allOf`, turns `oneOf`
/// into `anyOf`, type lists and null branches into `nullable`, `const` into
/// a one-value `enum`, and drops every keyword Gemini does not accept.
pub struct GeminiSchemaCleaner<'schema, 'budget> {
    definitions_by_reference: HashMap<String, &'schema Value>,
    budget: &'budget mut SchemaBudget,
}

/// Stands in for a schema that cannot be expanded (too deep, too large or an
/// unknown reference).
pub fn opaque_object_schema() -> Value {
    json!({ "type": "object" })
}

impl<'schema, 'budget> GeminiSchemaCleaner<'schema, 'budget> {
    fn new(root_schema: &'schema Value, budget: &'budget mut SchemaBudget) -> Self {
        let mut definitions_by_reference = HashMap::new();
        for definitions_keyword in ["$defs", "definitions"] {
            let Some(definitions) = root_schema.get(definitions_keyword).and_then(Value::as_object) else {
                continue;
            };
            for (definition_name, definition) in definitions {
                let escaped_name = definition_name.replace('~', "~0").replace('/', "~1");
                definitions_by_reference.insert(format!("#/{definitions_keyword}/{escaped_name}"), definition);
            }
        }
        GeminiSchemaCleaner { definitions_by_reference, budget }
    }

    /// The object a `$ref` points to, when it is a known local definition.
    fn resolve_reference(&self, reference: &str) -> Option<&'schema Map<String, Value>> {
        self.definitions_by_reference.get(reference).and_then(|definition| definition.as_object())
    }

    fn clean(&mut self, schema: &Value, reference_depth: usize, nesting_depth: usize) -> Value {
        let Some(schema_object) = schema.as_object() else {
            // Boolean schemas (`true`, `false`) and junk: accept anything.
            return json!({});
        };
        if nesting_depth > MAXIMUM_SCHEMA_NESTING_DEPTH || !self.budget.take(shallow_size(schema_object)) {
            return opaque_object_schema();
        }

        let mut node = schema_object.clone();
        let mut reference_depth = reference_depth;

        if let Some(reference) = node.remove("$ref") {
            let target = reference.as_str().and_then(|reference| self.resolve_reference(reference));
            match target {
                Some(target) if reference_depth < MAXIMUM_REFERENCE_EXPANSION_DEPTH => {
                    // Keywords next to the `$ref` (e.g. a description) win.
                    let mut combined = target.clone();
                    combined.extend(node);
                    return self.clean(&Value::Object(combined), reference_depth + 1, nesting_depth + 1);
                }
                _ => {
                    node.entry("type").or_insert_with(|| Value::String("object".to_string()));
                }
            }
        }

        if let Some(Value::Array(all_of)) = node.remove("allOf") {
            for sub_schema in &all_of {
                let mut sub_schema_object = sub_schema.as_object().cloned().unwrap_or_default();
                if let Some(reference) = sub_schema_object.remove("$ref") {
                    let target = reference.as_str().and_then(|reference| self.resolve_reference(reference));
                    if let Some(target) = target {
                        if reference_depth >= MAXIMUM_REFERENCE_EXPANSION_DEPTH {
                            continue;
                        }
                        reference_depth += 1;
                        let mut combined = target.clone();
                        combined.extend(sub_schema_object);
                        sub_schema_object = combined;
                    }
                }
                merge_all_of_member(&mut node, sub_schema_object);
            }
        }

        if !node.contains_key("anyOf") {
            if let Some(one_of) = node.remove("oneOf") {
                node.insert("anyOf".to_string(), one_of);
            }
        }

        let mut nullable = node.get("nullable").and_then(Value::as_bool) == Some(true);

        match node.get("type").cloned() {
            Some(Value::Array(type_names)) => {
                let non_null_type_names: Vec<Value> =
                    type_names.iter().filter(|type_name| type_name.as_str() != Some("null")).cloned().collect();
                nullable |= non_null_type_names.len() < type_names.len();
                node.remove("type");
                match non_null_type_names.as_slice() {
                    [] => {}
                    [single_type_name] => {
                        node.insert("type".to_string(), single_type_name.clone());
                    }
                    _ if !node.contains_key("anyOf") => {
                        let alternatives =
                            non_null_type_names.into_iter().map(|type_name| json!({ "type": type_name })).collect();
                        node.insert("anyOf".to_string(), Value::Array(alternatives));
                    }
                    _ => {}
                }
            }
            Some(Value::String(type_name)) if type_name == "null" => {
                node.remove("type");
                nullable = true;
            }
            Some(Value::String(_)) | None => {}
            Some(_) => {
                node.remove("type");
            }
        }

        if let Some(any_of) = node.remove("anyOf") {
            let mut alternatives = Vec::new();
            for alternative in any_of.as_array().map(Vec::as_slice).unwrap_or_default() {
                if alternative.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                    continue;
                }
                alternatives.push(self.clean(alternative, reference_depth, nesting_depth + 1));
            }
            let can_flatten = !node.contains_key("type") && !node.contains_key("properties");
            match alternatives.len() {
                0 => {}
                1 if can_flatten => {
                    if let Some(Value::Object(single_alternative)) = alternatives.pop() {
                        for (keyword, value) in single_alternative {
                            if keyword == "nullable" {
                                nullable |= value.as_bool() == Some(true);
                            } else {
                                node.entry(keyword).or_insert(value);
                            }
                        }
                    }
                }
                _ => {
                    node.insert("anyOf".to_string(), Value::Array(alternatives));
                }
            }
        }

        // A non-string `const` cannot be expressed and is dropped.
        if let Some(Value::String(constant_text)) = node.remove("const") {
            if !node.contains_key("enum") {
                node.insert("enum".to_string(), json!([constant_text]));
            }
            node.entry("type").or_insert_with(|| Value::String("string".to_string()));
        }

        if let Some(enum_values) = node.remove("enum") {
            let values = enum_values.as_array().map(Vec::as_slice).unwrap_or_default();
            nullable |= values.iter().any(Value::is_null);
            let non_null_values: Vec<&Value> = values.iter().filter(|value| !value.is_null()).collect();
            if !non_null_values.is_empty() && non_null_values.iter().all(|value| value.is_string()) {
                node.insert("enum".to_string(), Value::Array(non_null_values.into_iter().cloned().collect()));
            }
        }

        let type_name = node.get("type").and_then(Value::as_str).map(str::to_string);
        if let Some(format) = node.get("format").and_then(Value::as_str) {
            let format_is_supported = match type_name.as_deref() {
                Some("string") => matches!(format, "enum" | "date-time"),
                Some("number") | Some("integer") => {
                    matches!(format, "int32" | "int64" | "float" | "double")
                }
                _ => false,
            };
            if !format_is_supported {
                node.remove("format");
            }
        } else {
            node.remove("format");
        }

        match node.remove("properties") {
            Some(Value::Object(properties)) if !properties.is_empty() => {
                let mut cleaned_properties = Map::new();
                for (property_name, property_schema) in &properties {
                    let cleaned_property = self.clean(property_schema, reference_depth, nesting_depth + 1);
                    cleaned_properties.insert(property_name.clone(), cleaned_property);
                }
                node.insert("properties".to_string(), Value::Object(cleaned_properties));
                node.entry("type").or_insert_with(|| Value::String("object".to_string()));
            }
            _ => {}
        }

        match node.remove("items") {
            Some(items @ Value::Object(_)) => {
                let cleaned_items = self.clean(&items, reference_depth, nesting_depth + 1);
                node.insert("items".to_string(), cleaned_items);
                node.entry("type").or_insert_with(|| Value::String("array".to_string()));
            }
            Some(Value::Array(tuple_items)) => {
                if let Some(first_item) = tuple_items.first() {
                    let cleaned_items = self.clean(first_item, reference_depth, nesting_depth + 1);
                    node.insert("items".to_string(), cleaned_items);
                }
            }
            _ => {}
        }

        let property_names: HashSet<String> = node
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default();
        for names_keyword in ["required", "propertyOrdering"] {
            if let Some(names) = node.remove(names_keyword) {
                let known_names: Vec<Value> = names
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter(|name| name.as_str().is_some_and(|name| property_names.contains(name)))
                    .cloned()
                    .collect();
                if !known_names.is_empty() {
                    node.insert(names_keyword.to_string(), Value::Array(known_names));
                }
            }
        }

        node.remove("nullable");
        if nullable {
            node.insert("nullable".to_string(), Value::Bool(true));
        }
        node.retain(|keyword, _| GEMINI_SCHEMA_KEYWORDS.contains(&keyword.as_str()));
        Value::Object(node)
    }
}

/// Merges one `allOf` member into the schema: `properties` are united,
/// `required` lists concatenated, other keywords added when absent.
pub fn merge_all_of_member(node: &mut Map<String, Value>, member: Map<String, Value>) {
    for (keyword, value) in member {
        match (keyword.as_str(), node.get_mut(&keyword), value) {
            ("properties", Some(Value::Object(properties)), Value::Object(member_properties)) => {
                for (property_name, property_schema) in member_properties {
                    properties.entry(property_name).or_insert(property_schema);
                }
            }
            ("required", Some(Value::Array(required)), Value::Array(member_required)) => {
                for name in member_required {
                    if !required.contains(&name) {
                        required.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                node.insert(keyword, value);
            }
        }
    }
}
