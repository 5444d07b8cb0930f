// Entry point: defines <parley-app>, which index.html already contains.
import './app.js';
