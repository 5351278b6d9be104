import { mount } from 'svelte';
import App from './App.svelte';
import { AppState } from './state/app.svelte.ts';
import './app.css';

const target = document.getElementById('app');
if (!target) throw new Error('missing #app');
const app = new AppState(window.parley);
mount(App, { target, props: { app } });
void app.start();
