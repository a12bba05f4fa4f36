import { presets } from 'bulwark';

const inventory = presets.httpClient({ name: 'inventory' }); // a fetch with the policies around it
export const response = await inventory('http://inventory.internal/items/42');
