// A typed client of apiv4. The types in schema.d.ts are generated from
// openapi.yaml by openapi-typescript (make ts-client); openapi-fetch turns
// them into a fetch wrapper whose paths, parameters, bodies and answers
// are all checked by the compiler. followEvents adds what a generated
// client cannot: the Server-Sent Events stream of streamEvents.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };
export type Event = components["schemas"]["Event"];
export type Linode = components["schemas"]["Linode"];
export type ErrorResponse = components["schemas"]["ErrorResponse"];

/** Where the server is and who calls it. */
export interface Options {
  /** The server, without /v4, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** A personal access token. */
  token: string;
}

/** Returns a client of every operation of the spec, under /v4. */
export function createApiv4Client(opts: Options): Client<paths> {
  return createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/+$/, "") + "/v4",
    headers: { Authorization: `Bearer ${opts.token}` },
  });
}

/** One event pushed by the stream, with its change position. */
export interface StreamedEvent {
  /** The account's change position: resume after it with Last-Event-ID. */
  position: number;
  event: Event;
}

/** What to follow and from where. */
export interface FollowOptions extends Options {
  /** An X-Filter the events must match. */
  filter?: string;
  /** The position to resume after; without it, from now on. */
  after?: number;
  /** Ends the stream. */
  signal?: AbortSignal;
  /** Called with the position the stream starts from, once it is open. */
  onOpen?: (position: number) => void;
}

/**
 * Follows streamEvents: yields each event created or changed, in order,
 * until the signal aborts or the stream ends. Call it again with
 * `after` set to the last position seen to resume without a gap.
 */
export async function* followEvents(opts: FollowOptions): AsyncGenerator<StreamedEvent> {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${opts.token}`,
    Accept: "text/event-stream",
  };
  if (opts.filter !== undefined) headers["X-Filter"] = opts.filter;
  if (opts.after !== undefined) headers["Last-Event-ID"] = String(opts.after);
  const init: RequestInit = { headers };
  if (opts.signal !== undefined) init.signal = opts.signal;
  const res = await fetch(opts.baseUrl.replace(/\/+$/, "") + "/v4/account/events/stream", init);
  if (res.status !== 200 || res.body === null) {
    const body = (await res.json()) as ErrorResponse;
    throw new Error(`streamEvents: ${res.status} ${body.errors[0]?.reason ?? ""}`);
  }

  const decoder = new TextDecoder();
  let opened = false;
  let buffered = "";
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const frame = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let position = -1;
      let data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("id:")) position = Number(line.slice(3).trim());
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (data !== "") yield { position, event: JSON.parse(data) as Event };
      else if (position >= 0 && !opened) opts.onOpen?.(position);
      if (position >= 0) opened = true;
    }
  }
}
