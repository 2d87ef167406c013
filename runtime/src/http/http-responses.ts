/**
 * The few response shapes trainfleet's HTTP endpoints send. Errors are JSON in the shape
 * Connect uses, `{"code": "not_found", "message": "..."}`, with the code named after the
 * TrainfleetError code (so a client maps it back with `codeFromName`).
 */
import type { ServerResponse } from "node:http";
import { Code, codeName } from "@trainfleet/proto";

const httpStatusOf: Partial<Record<number, number>> = {
  [Code.INVALID_ARGUMENT]: 400,
  [Code.NOT_FOUND]: 404,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.UNIMPLEMENTED]: 405,
  [Code.UNAVAILABLE]: 503,
};

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  response.end(text);
}

export function sendText(response: ServerResponse, status: number, text: string, contentType = "text/plain; charset=utf-8"): void {
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  response.end(text);
}

/** A JSON error; `status` defaults to the HTTP status that matches `code`. */
export function sendError(
  response: ServerResponse,
  status: number | undefined,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(response, status ?? httpStatusOf[code] ?? 500, { code: codeName(code).toLowerCase(), message }, headers);
}

/** 405 for a method other than GET, naming the path and the method it takes. */
export function sendMethodNotAllowed(response: ServerResponse, method: string | undefined, path: string): void {
  sendError(response, 405, Code.UNIMPLEMENTED, `${method ?? "?"} ${path}: only GET is supported`, { allow: "GET" });
}

/** The TrainfleetError code of an error body's `code` ("not_found"), UNKNOWN when it is none. */
export function codeFromName(name: unknown): Code {
  const upper = typeof name === "string" ? name.toUpperCase() : "";
  return (Code as Record<string, Code>)[upper] ?? Code.UNKNOWN;
}
