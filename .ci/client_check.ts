// Compiled (strict, no output) against the TypeScript types openapi-typescript generates from
// openapi/openapi.json, by .ci/client: a frontend's list page holds the same type as one
// incident, and the procedure's actions carry what a frontend draws buttons from.
import type { components, paths } from "./api";

type Incident = components["schemas"]["IncidentResponse"];
type IncidentPage =
  paths["/api/v1/incidents"]["get"]["responses"][200]["content"]["application/json"];
type Procedure = components["schemas"]["Procedure"];

export function firstOnPage(page: IncidentPage): Incident | undefined {
  const cursor: string | null = page.next_cursor;
  return cursor === null ? page.items[0] : page.items[page.items.length - 1];
}

export function buttons(incident: Incident, procedure: Procedure): string[] {
  return procedure.actions
    .filter((a) => a.from === incident.status && incident.allowed_actions.includes(a.action))
    .map((a) => `${a.action} → ${a.to}`);
}

export function problemCode(
  problem: components["schemas"]["Problem"],
): string {
  return `${problem.status} ${problem.code}`;
}
