// The login form: the admin token, or a user's name and password (POST /api/auth/login).
import { post } from '../api.js';
import { LANGUAGES } from '../i18n.js';
import { html, useState } from '../lib.js';
import { useApp } from '../ui.js';

export function Login({ expired }) {
  const { t, lang, setLang, signedIn } = useApp();
  const [mode, setMode] = useState('token');
  const [values, setValues] = useState({ token: '', username: '', password: '' });
  const [error, setError] = useState(expired ? t('login.expired') : null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (e) => setValues({ ...values, [key]: e.currentTarget.value });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = mode === 'token' ? { token: values.token } : { username: values.username, password: values.password };
    try {
      const { data } = await post('/api/auth/login', body);
      signedIn(data.user.name);
    } catch (err) {
      setError(err.status === 401 ? t('login.failed') : t('login.error', { error: err.message }));
    } finally {
      setBusy(false);
    }
  };

  return html`<div class="login-page">
    <form class="login card" onSubmit=${submit}>
      <div class="login-brand">
        <img src="/static/favicon.svg" alt="" width="36" height="36" />
        <div><b>evbus</b><small>${t('app.subtitle')}</small></div>
      </div>
      <h1>${t('login.title')}</h1>
      <div class="segmented full" role="tablist">
        <button type="button" role="tab" aria-selected=${mode === 'token'} class=${mode === 'token' ? 'on' : ''} onClick=${() => setMode('token')}>
          ${t('login.withToken')}
        </button>
        <button type="button" role="tab" aria-selected=${mode === 'user'} class=${mode === 'user' ? 'on' : ''} onClick=${() => setMode('user')}>
          ${t('login.withUser')}
        </button>
      </div>
      ${mode === 'token'
        ? html`<label class="field wide"><span>${t('login.token')}</span>
            <input type="password" name="token" autocomplete="current-password" required value=${values.token} onInput=${set('token')} autofocus />
          </label>`
        : html`<label class="field wide"><span>${t('login.username')}</span>
              <input name="username" autocomplete="username" required value=${values.username} onInput=${set('username')} autofocus />
            </label>
            <label class="field wide"><span>${t('login.password')}</span>
              <input type="password" name="password" autocomplete="current-password" required value=${values.password} onInput=${set('password')} />
            </label>`}
      ${error && html`<p class="notice bad" role="alert">${error}</p>`}
      <button type="submit" class="primary" disabled=${busy}>${t('login.submit')}</button>
      <p class="hint">${t('login.hint')}</p>
      <div class="login-lang">
        ${LANGUAGES.map(
          (l) => html`<button type="button" class=${`link ${lang === l.code ? 'on' : ''}`} lang=${l.code} onClick=${() => setLang(l.code)}>${l.name}</button>`,
        )}
      </div>
    </form>
  </div>`;
}
