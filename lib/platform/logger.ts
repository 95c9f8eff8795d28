import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import type PinoPretty from 'pino-pretty';

/** `auto`: human-readable lines on a terminal, JSON lines otherwise (a service manager, a pipe, a file). */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function isLogFormat(value: string): value is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(value);
}

/** What `auto` means for a stream: pretty only on a terminal. */
export function effectiveLogFormat(format: LogFormat, isTTY: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

let prettyModule: typeof PinoPretty | null | undefined;

/** pino-pretty, loaded on first use only; null when it is not installed (the logs stay JSON). */
function loadPretty(): typeof PinoPretty | null {
  if (prettyModule === undefined) {
    try {
      prettyModule = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    } catch {
      prettyModule = null;
    }
  }
  return prettyModule;
}

export interface LoggerSettings {
  level: string;
  format: LogFormat;
  /** Named on each line (`grpc`, `agent`, ...). */
  name?: string;
  /** stdout (1) by default; stderr is 2. */
  fd?: 1 | 2;
  /** Extra pino options (redaction, serializers). */
  options?: LoggerOptions;
}

const prettyLoggers = new WeakSet<Logger>();

/** Whether createLogger made this logger write human-readable lines (then requests are logged at debug). */
export function isPretty(logger: Logger): boolean {
  return prettyLoggers.has(logger);
}

/** A pino logger writing JSON lines, or, in pretty format, human-readable coloured lines. */
export function createLogger(s: LoggerSettings): Logger {
  const fd = s.fd ?? 1;
  const isTTY = Boolean((fd === 1 ? process.stdout : process.stderr).isTTY);
  const options: LoggerOptions = { level: s.level, ...(s.name ? { name: s.name } : {}), ...s.options };
  const pretty = effectiveLogFormat(s.format, isTTY) === 'pretty' ? loadPretty() : null;
  if (!pretty) return pino(options, pino.destination({ fd, sync: true }));
  const stream: DestinationStream = pretty({
    destination: fd,
    sync: true,
    colorize: isTTY && !process.env.NO_COLOR,
    translateTime: 'SYS:HH:MM:ss',
    ignore: 'pid,hostname,reqId',
    singleLine: true,
  });
  const logger = pino(options, stream);
  prettyLoggers.add(logger);
  return logger;
}

/**
 * The few lines a program always prints, whatever the log level (enrolled, listening, stopping):
 * supervisors and tests wait for them. JSON lines like pino's, or one readable line on a terminal.
 */
export function lifecycleLog(format: LogFormat, name?: string): (msg: string, fields?: object) => void {
  const pretty = effectiveLogFormat(format, Boolean(process.stdout.isTTY)) === 'pretty';
  return (msg, fields = {}) => {
    if (!pretty) {
      const line = { level: 30, time: Date.now(), ...(name ? { name } : {}), msg, ...fields };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return;
    }
    const time = new Date().toTimeString().slice(0, 8);
    const details = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    process.stdout.write(`[${time}] ${msg}${details ? ` ${details}` : ''}\n`);
  };
}
