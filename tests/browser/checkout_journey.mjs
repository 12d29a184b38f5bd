// Drives the pay-then-activate journey in Debian's headless Chromium: sign in,
// the plans page, checkout on the local fake's Stripe page, back on the return
// page, the account page, cancel, and the account page after Stripe's webhook.
// usage: node checkout_journey.mjs <base url> <email> <password> <screenshot dir>
// Prints one JSON object with what it saw; exits non-zero on any failed expectation.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, email, password, shots] = process.argv.slice(2);
if (!base || !email || !password || !shots) {
  console.error("usage: node checkout_journey.mjs <base url> <email> <password> <screenshot dir>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const TIMEOUT = 15000;

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const violations = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
  });

  // Sign in, and land on the plans page.
  await page.goto(`${base}/account/sign-in?next=/account/plans`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await Promise.all([
    page.waitForURL((url) => url.pathname === "/account/plans"),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  await page.getByText(`Signed in as ${email}.`).waitFor();
  await page.screenshot({ path: join(shots, "checkout-1-plans.png"), fullPage: true });

  // Choose Premium Monthly with Stripe: the fake's hosted page.
  await Promise.all([
    page.waitForURL((url) => url.pathname.startsWith("/checkout/pay/")),
    page.locator('button[data-plan="premium_monthly"][data-provider="stripe"]').click(),
  ]);
  out.checkout_url = page.url();
  await page.screenshot({ path: join(shots, "checkout-2-provider.png"), fullPage: true });

  // Pay: the webhook goes out, and the buyer comes back to the return page.
  await Promise.all([
    page.waitForURL((url) => url.pathname === "/account/return"),
    page.getByRole("button", { name: "Pay" }).click(),
  ]);
  out.return_text = await page.locator("#message").textContent();
  if (!/^Payment successful\. Subscription active until /.test(out.return_text)) {
    throw new Error(`return page said: ${out.return_text}`);
  }
  await page.screenshot({ path: join(shots, "checkout-3-return.png"), fullPage: true });

  // The account page: active; cancel; canceled, with access until the period's end.
  await page.goto(`${base}/account/overview`);
  const subscription = page.locator('[data-subscription^="stripe:"]');
  await subscription.getByText(/Premium Monthly: active, access until /).waitFor();
  out.before_cancel = await subscription.textContent();
  await page.screenshot({ path: join(shots, "checkout-4-account.png"), fullPage: true });
  await subscription.getByRole("button", { name: "Cancel" }).click();
  await page.getByText(/^cancellation requested; access until /).waitFor();
  out.cancel_message = await page.locator("#status").textContent();
  await subscription.getByText(/Premium Monthly: canceled, access until /).waitFor();
  out.after_cancel = await subscription.textContent();
  // The payments and notices load after the subscriptions: wait for them.
  await page.locator("#payments").getByText(/succeeded/).waitFor();
  out.payments = await page.locator("#payments").textContent();
  await page.locator("#notices").getByText(/canceled/).waitFor();
  out.notices = await page.locator("#notices").textContent();
  await page.screenshot({ path: join(shots, "checkout-5-canceled.png"), fullPage: true });
  out.csp_violations = violations;
  if (violations.length) { throw new Error(`CSP violations: ${violations.join("; ")}`); }
  console.log(JSON.stringify(out));
} catch (error) {
  console.error(String(error && error.stack || error));
  console.log(JSON.stringify(out));
  process.exitCode = 1;
} finally {
  await browser.close();
}
