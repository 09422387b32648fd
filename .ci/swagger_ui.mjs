// Swagger UI as a newcomer meets it, in a real headless Chromium driven by playwright-core:
// the operation list with the incidents tag collapsed, then Authorize with the desk user of the
// POST /users example, "Try it out" of POST /api/v1/incidents with its example unchanged → 201,
// "Try it out" of the file upload to that incident with a file chosen → 201, and the token still
// there after a reload. Screenshots go to the directory given.
// Usage: node swagger_ui.mjs <base url> <admin password> <screenshot dir>  (run by .ci/swagger-ui)
import { chromium } from "playwright-core";

const [base, adminPassword, shots] = process.argv.slice(2);

async function call(method, path, token, body) {
  const response = await fetch(base + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// The first three steps of the README's Swagger walk, with the document's own examples.
const doc = await call("GET", "/api-docs/openapi.json");
const example = (name) => doc.components.schemas[name].example;
const admin = (await call("POST", "/api/v1/auth/token", null, {
  username: "admin",
  password: adminPassword,
})).access_token;
await call("POST", "/api/v1/customers", admin, example("CreateCustomerRequest"));
await call("POST", "/api/v1/configuration-items", admin, example("CreateConfigurationItemRequest"));
await call("POST", "/api/v1/users", admin, example("CreateUserRequest"));
const desk = (await call("POST", "/api/v1/auth/token", null, example("TokenRequest"))).access_token;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
// The page's Content-Security-Policy must let Swagger UI run: any refusal fails the walk.
const refusals = [];
page.on("console", (message) => {
  if (/Content.Security.Policy|Refused to/i.test(message.text())) refusals.push(message.text());
});
await page.goto(`${base}/swagger-ui/`);
await page.waitForSelector(".opblock-tag-section");

// The incidents tag collapsed: one short summary per line.
const incidentsTag = page.locator("#operations-tag-incidents");
if ((await page.locator("#operations-incidents-create_incident").count()) > 0) {
  await incidentsTag.click();
}
await page.screenshot({ path: `${shots}/1-operations.png`, fullPage: false });
await incidentsTag.click();
await page.waitForSelector("#operations-incidents-create_incident");
const summaries = await page
  .locator(".opblock-tag-section", { has: page.locator("#operations-tag-incidents") })
  .locator(".opblock-summary-description")
  .allInnerTexts();
if (summaries.length < 15) throw new Error(`only ${summaries.length} incident operations shown`);
const long = summaries.filter((s) => s.length > 80 || s.includes("\n"));
if (long.length) throw new Error(`summaries over one line: ${long}`);
await page.screenshot({ path: `${shots}/2-incidents-tag.png` });

// Authorize as the desk user.
await page.click(".auth-wrapper .authorize");
await page.fill(".modal-ux input[type=text], .modal-ux input:not([type])", desk);
await page.click(".modal-ux .auth-btn-wrapper button.authorize");
await page.click(".modal-ux .auth-btn-wrapper button.btn-done");

// Try it out: POST /api/v1/incidents with its example unchanged.
const operation = page.locator("#operations-incidents-create_incident");
await operation.locator(".opblock-summary").click();
await operation.locator("button.try-out__btn").click();
await operation.locator("button.execute").click();
const status = operation.locator(".live-responses-table .response .response-col_status").first();
await status.waitFor();
const code = (await status.innerText()).trim();
await operation.screenshot({ path: `${shots}/3-create-incident-201.png` });
if (code !== "201") throw new Error(`POST /api/v1/incidents with its example answered ${code}`);

// Try it out: upload a file to that incident through the multipart form Swagger UI draws from
// the document, then read it back through the API: the same bytes, the type sniffed from them.
const fileBytes = Buffer.concat([
  Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"),
  Buffer.from("收费窗口截图 screenshot of the till", "utf8"),
]);
const created = JSON.parse(
  await operation.locator(".live-responses-table .response .response-col_description pre").first().innerText(),
);
const upload = page.locator("#operations-attachments-upload_incident_attachments");
if ((await upload.count()) === 0) await page.locator("#operations-tag-attachments").click();
await upload.waitFor();
await upload.locator(".opblock-summary").click();
await upload.locator("button.try-out__btn").click();
await upload.locator("tr[data-param-name='id'] input").fill(String(created.id));
const visibilitySelect = upload.locator(".opblock-body select").filter({ hasText: "public" });
if ((await visibilitySelect.count()) > 0) await visibilitySelect.first().selectOption("public");
await upload.locator("input[type=file]").setInputFiles({
  name: "收费窗口截图.png",
  mimeType: "image/png",
  buffer: fileBytes,
});
await upload.locator("button.execute").click();
const uploadStatus = upload.locator(".live-responses-table .response .response-col_status").first();
await uploadStatus.waitFor();
const uploadCode = (await uploadStatus.innerText()).trim();
await upload.screenshot({ path: `${shots}/4-upload-attachment-201.png` });
if (uploadCode !== "201") throw new Error(`Try it out of the upload answered ${uploadCode}`);
const stored = (await call("GET", `/api/v1/incidents/${created.id}/attachments`, desk)).items;
if (stored.length !== 1 || stored[0].filename !== "收费窗口截图.png" || stored[0].content_type !== "image/png") {
  throw new Error(`the upload stored ${JSON.stringify(stored)}`);
}
const downloaded = Buffer.from(
  await (await fetch(`${base}/api/v1/attachments/${stored[0].id}/content`, {
    headers: { authorization: `Bearer ${desk}` },
  })).arrayBuffer(),
);
if (!downloaded.equals(fileBytes)) throw new Error("the downloaded bytes differ from the uploaded ones");

// The token survives a reload (persistAuthorization).
await page.reload();
await page.waitForSelector(".auth-wrapper .authorize");
const locked = await page.locator(".auth-wrapper .authorize.locked").count();
if (locked !== 1) throw new Error("the token was forgotten on reload");

await browser.close();
if (refusals.length) throw new Error(`the CSP refused parts of Swagger UI: ${refusals}`);
console.log(`Swagger UI: the incidents tag lists ${summaries.length} one-line summaries; ` +
  `Try it out of POST /api/v1/incidents answered ${code}; its file upload answered ${uploadCode} ` +
  `and the bytes came back whole; the token survived a reload`);
