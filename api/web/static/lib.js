// The front-end libraries, from the vendor folder make install fills (no CDN, no bundler).
export * from './vendor/htm-preact.js';
export { default as uPlot } from './vendor/uPlot.js';
