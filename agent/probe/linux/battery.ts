/** The battery from sysfs, as systeminformation reads it on Linux (its uevent file; BAT1 first, then BAT0). */
import { join } from 'node:path';
import { sysfsValue } from './sensors.js';
import type { Battery } from '../index.js';

/** The battery (BAT1, else BAT0, as systeminformation looks) from its uevent file. */
export function parseBatteryUevent(text: string | undefined): Battery {
  const values = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) values.set(line.slice(0, eq).trim().toUpperCase(), line.slice(eq + 1).trim());
  }
  const int = (key: string): number => Number.parseInt(`0${values.get(`POWER_SUPPLY_${key}`) ?? ''}`, 10) || 0;
  const isCharging = (values.get('POWER_SUPPLY_STATUS') ?? '').toLowerCase() === 'charging';
  // Charge (µAh) or energy (µWh): either gives the fill level when the driver reports no CAPACITY.
  const full = int('CHARGE_FULL') || int('ENERGY_FULL');
  const now = int('CHARGE_FULL') ? int('CHARGE_NOW') : int('ENERGY_NOW');
  const capacity = values.get('POWER_SUPPLY_CAPACITY');
  const hasBattery = (full > 0 && now > 0) || isCharging;
  const percent = capacity ? int('CAPACITY') : full > 0 ? (100 * now) / full : 0;
  return { hasBattery, percent, isCharging };
}

export function batteryReader(root = '/sys/class/power_supply'): () => Promise<Battery> {
  const bat1 = sysfsValue(join(root, 'BAT1', 'uevent'));
  const bat0 = sysfsValue(join(root, 'BAT0', 'uevent'));
  return async () => parseBatteryUevent((await bat1()) ?? (await bat0()));
}
