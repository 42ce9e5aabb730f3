// The bridge's query mapping (grpc-gateway style, docs/wire-contract.md,
// "Request"), from the request's proto3 JSON: `a.b` for nested fields,
// repetition for repeated fields, enums by name, 64-bit integers as decimal
// strings, bytes as base64, JSON field names.
//
// What a query cannot say, so the request goes as a POST with a JSON body:
// maps, repeated messages, well-known types (google.protobuf.*: Timestamp,
// Struct, wrappers, ...), a null value, and a nested message that is set but
// empty (its presence would be lost).
import type { DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";

/**
 * The query parameters for a request's proto3 JSON (`toJson(schema, message)`),
 * or `undefined` when a field cannot be expressed in a query.
 */
export function queryParams(schema: DescMessage, json: JsonValue): [string, string][] | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  const out: [string, string][] = [];
  return flatten(schema, json, "", out) ? out : undefined;
}

function scalar(value: JsonValue): string | undefined {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
      return String(value);
    case "boolean":
      return value ? "true" : "false";
    default:
      return undefined;
  }
}

function flatten(schema: DescMessage, json: JsonObject, prefix: string, out: [string, string][]): boolean {
  let seen = 0;
  for (const field of schema.fields) {
    const value = json[field.jsonName];
    if (value === undefined) continue;
    seen++;
    const name = prefix + field.jsonName;
    switch (field.fieldKind) {
      case "scalar":
      case "enum": {
        const s = scalar(value);
        if (s === undefined) return false;
        out.push([name, s]);
        break;
      }
      case "list": {
        if (field.listKind === "message" || !Array.isArray(value)) return false;
        for (const item of value) {
          const s = scalar(item);
          if (s === undefined) return false;
          out.push([name, s]);
        }
        break;
      }
      case "map":
        return false;
      case "message": {
        if (field.message.typeName.startsWith("google.protobuf.")) return false;
        if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
        if (Object.keys(value).length === 0) return false;
        if (!flatten(field.message, value, name + ".", out)) return false;
        break;
      }
    }
  }
  // Anything else (an extension's "[pkg.ext]" key) has no query form.
  return seen === Object.keys(json).length;
}
