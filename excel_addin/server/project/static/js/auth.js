// gradsheet's globalThis.getAuth, served instead of xlwings Server's static/js/auth.js (same path; a
// project's static file comes first). xlwings' client awaits it before every custom function call,
// custom script call (a pane button) and socket.io connection, and sends the {token, provider} it
// returns as the Authorization and Auth-Provider headers (socket.io: as its auth payload).
//
// The providers come from xlwings' config.authProviders (XLWINGS_AUTH_PROVIDERS on the server):
// - class codes (the provider the page's gradsheet-config names): the class code this browser remembers (localStorage, per server) once the person
//   signed in in the pane (signin.js); none yet: an empty token, which the server answers with
//   "sign in in the gradsheet pane";
// - "entraid" (and no class code remembered): xlwings' own Microsoft Entra ID flow;
// - none: no credentials (the one-person server).
// A classic script (no import): base.html loads it before the modules, so config is read on each call.

(function () {
  const STORAGE_KEY = "gradsheetClassCode";
  let unstored = ""; // where blocked storage leaves the code: until the pane closes

  function providers() {
    return (globalThis.config && globalThis.config.authProviders) || [];
  }

  let classToken = null; // the class codes' provider name, from the task pane's gradsheet-config
  function classTokenProvider() {
    if (classToken === null) {
      const element = document.getElementById("gradsheet-config");
      classToken = element ? JSON.parse(element.textContent).signin.class_token : "";
    }
    return classToken;
  }

  function storedCode() {
    try {
      return localStorage.getItem(STORAGE_KEY) || unstored;
    } catch (error) {
      return unstored; // storage blocked: the person signs in again each time the pane opens
    }
  }

  // The remembered class code, for the pane's sign-in (signin.js).
  globalThis.gradsheetClassCode = {
    get: storedCode,
    set(code) {
      unstored = code;
      try {
        localStorage.setItem(STORAGE_KEY, code);
      } catch (error) {
        // kept in memory only
      }
    },
    forget() {
      unstored = "";
      try {
        localStorage.removeItem(STORAGE_KEY);
      } catch (error) {
        // nothing was stored
      }
    },
  };

  globalThis.getAuth = async function () {
    const configured = providers();
    const code = storedCode();
    const provider = classTokenProvider();
    if (provider && configured.includes(provider) && (code || !configured.includes("entraid"))) {
      return { token: code, provider };
    }
    if (configured.includes("entraid")) {
      return { token: await globalThis.xlwings.getAccessToken(), provider: "entraid" };
    }
    return { token: "", provider: "" };
  };
})();
