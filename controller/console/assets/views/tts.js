// Text to speech in the compose form: type the notice, the controller reads
// it out (POST /api/v1/media/tts) and stores the audio like an upload; it
// can be listened to here before it is sent.
import {h} from '../dom.js';
import {t, duration} from '../i18n.js';
import {api, message} from '../api.js';

// ttsBox returns the text-to-speech part of a form; onMedia gets the stored
// media once the text has been spoken.
export function ttsBox(onMedia) {
  const text = h('textarea', {id: 'f-tts-text', rows: 3, maxlength: 2000, placeholder: t('tts.placeholder')});
  const lang = h('select', {id: 'f-tts-lang', 'aria-label': t('tts.lang')},
    h('option', {value: 'zh'}, t('tts.lang.zh')), h('option', {value: 'en'}, t('tts.lang.en')));
  const tone = h('input', {type: 'checkbox', id: 'f-tts-tone'});
  const status = h('div', {class: 'hint', id: 'tts-status', role: 'status'});
  const preview = h('audio', {controls: true, preload: 'auto', id: 'tts-preview', class: 'hidden'});
  const make = h('button', {type: 'button', id: 'tts-make'}, t('tts.make'));
  make.addEventListener('click', async () => {
    const words = text.value.trim();
    if (!words) {
      status.textContent = t('tts.empty');
      text.focus();
      return;
    }
    make.disabled = true;
    status.textContent = t('tts.making');
    try {
      const m = await api('POST', '/api/v1/media/tts', {text: words, lang: lang.value, attention_tone: tone.checked});
      preview.src = '/api/v1/media/' + m.sha256;
      preview.classList.remove('hidden');
      status.textContent = t('tts.made', {duration: duration(m.duration_ms)});
      onMedia(m);
    } catch (e) {
      status.textContent = t('tts.failed', {msg: message(e)});
    } finally {
      make.disabled = false;
    }
  });
  return h('div', {class: 'field', id: 'tts-box'},
    h('label', {for: 'f-tts-text'}, t('tts.heading')), text,
    h('div', {class: 'inline'}, lang, h('label', {}, tone, t('tts.tone')), make),
    status, preview);
}
