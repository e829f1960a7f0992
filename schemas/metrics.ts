import { Type } from '@sinclair/typebox'

export const getMetrics = {
  operationId: 'getMetrics',
  tags: ['service'],
  summary: 'Prometheus metrics',
  description: 'Request count and latency by method, route pattern and status; database pool; process metrics. ' +
    'Prometheus text exposition format.',
  response: {
    200: {
      description: 'The metrics in Prometheus text format',
      content: { 'text/plain': { schema: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) } }
    }
  }
} as const
