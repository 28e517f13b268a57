// The task pane's sign-in: a class code typed once ("Your class code"), checked with the server
// (GET <appPath>/gradsheet/me), remembered by auth.js, shown as "Signed in as Alice" with a Sign out.
// Only where the server signs in with class codes: taskpane.html renders the form for them only.
// With Microsoft Entra ID alone, xlwings' own flow signs in and the pane shows the name it got.
//
// A change of who is signed in reconnects socket.io: its auth callback (xlwings' socketio.js) asks
// getAuth on each connection, and xlwings' custom-functions code re-sends its streaming calls on
// "connect", so TRAIN_PROGRESS cells resume as the new user.

const element = (id) => document.getElementById(id);

export const TEXTS = {
  empty: "Type the class code from your slip.",
  checking: "Checking your class code...",
  wrong: "That class code was not accepted. Check it against your slip, or ask your teacher for a new one.",
  revoked: "Your saved class code no longer works (your teacher may have replaced it): type your new one.",
  signedOut: "Signed out. Type a class code to sign in again.",
  unreachable: "Cannot reach the gradsheet server",
};

function providers() {
  return (globalThis.config && globalThis.config.authProviders) || [];
}

// The Authorization and Auth-Provider headers getAuth gives (none without a provider).
export async function authHeaders() {
  if (!providers().length) return {};
  const auth = await globalThis.getAuth();
  return { Authorization: auth.token, "Auth-Provider": auth.provider };
}

async function whoIs(settings, headers) {
  const response = await fetch(`${window.location.origin}${settings.signin.me_url}`, { headers });
  if (response.ok) return { user: await response.json() };
  const body = await response.json().catch(() => ({}));
  return { status: response.status, detail: body.detail || response.statusText };
}

function reconnect() {
  const socket = globalThis.socket;
  if (socket) socket.disconnect().connect();
}

function showUser(user) {
  element("gs-user-name").textContent = user ? user.name : "";
  element("gs-signed-in").hidden = !user;
  const form = element("gs-signin-form");
  if (form) form.hidden = Boolean(user);
}

function say(text) {
  const message = element("gs-signin-message");
  message.textContent = text || "";
  message.hidden = !text;
}

async function signIn(settings, onChange) {
  const input = element("gs-class-code");
  const code = input.value.trim().toUpperCase();
  if (!code) return say(TEXTS.empty);
  const button = element("gs-signin-button");
  button.disabled = true;
  say(TEXTS.checking);
  try {
    const answer = await whoIs(settings, { Authorization: code, "Auth-Provider": settings.signin.class_token });
    if (answer.user) {
      globalThis.gradsheetClassCode.set(code);
      input.value = "";
      say("");
      showUser(answer.user);
      reconnect();
      onChange();
    } else {
      say(answer.status === 401 ? TEXTS.wrong : `${TEXTS.unreachable}: ${answer.status} ${answer.detail}`);
    }
  } catch (error) {
    say(`${TEXTS.unreachable}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function signOut(onChange) {
  globalThis.gradsheetClassCode.forget();
  showUser(null);
  say(TEXTS.signedOut);
  reconnect();
  onChange();
}

// On opening the pane: who the remembered credentials sign in as (a revoked code is forgotten).
async function resume(settings, usesCodes) {
  if (usesCodes && !globalThis.gradsheetClassCode.get()) return showUser(null);
  try {
    const answer = await whoIs(settings, await authHeaders());
    if (answer.user) return showUser(answer.user);
    if (usesCodes && answer.status === 401) {
      globalThis.gradsheetClassCode.forget();
      showUser(null);
      return say(TEXTS.revoked);
    }
    say(`${answer.detail}`);
  } catch (error) {
    say(`${TEXTS.unreachable}: ${error.message}`);
  }
}

// Wire up the sign-in section (if the page has one); onChange runs after signing in or out.
export function setUpSignIn(settings, onChange) {
  const section = element("gs-signin");
  if (!section) return;
  const usesCodes = Boolean(element("gs-signin-form"));
  if (usesCodes) {
    element("gs-signin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn(settings, onChange);
    });
    element("gs-sign-out").addEventListener("click", () => signOut(onChange));
  }
  resume(settings, usesCodes);
}
